/* The diagnostic checks; see checks.h. Each check reads facts the agent
 * already has (status of PC/SC, the token service, the local CA, trust
 * stores) and says what they mean for the person at the desk. */
#include "diag/checks.h"

#include "diag/certs.h"
#include "diag/proxy.h"
#include "localca/localca.h"
#include "localca/trust.h"
#include "profile/profile.h"
#include "token/login.h"
#include "token/pcsc.h"
#include "token/tokens.h"
#include "util/dirs.h"
#include "util/format.h"
#include "x509/cert.h"
#include "x509/crt.h"

#include <mbedtls/base64.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const status_names[] = {"pass", "warn", "fail", "skip"};

struct text {
    char zh[512], en[512];
};

static void say(struct text *t, const char *zh, const char *en, ...)
    UKEY_PRINTF(3, 4);

/* Fills both languages; the zh format takes the same arguments as en. */
static void say(struct text *t, const char *zh, const char *en, ...)
{
    va_list ap;
    va_start(ap, en);
    vsnprintf(t->en, sizeof t->en, en, ap);
    va_end(ap);
    va_start(ap, en);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(t->zh, sizeof t->zh, zh, ap);
#pragma GCC diagnostic pop
    va_end(ap);
}

struct run {
    const struct diag_options *opt;
    json_t *checks;
};

/* Appends one check; takes `evidence` (may be NULL). */
static void add(struct run *r, const char *id, enum diag_status st, const char *title_zh, const char *title_en,
                const struct text *detail, const char *fix_zh, const char *fix_en, json_t *evidence)
{
    int zh = r->opt->lang == DIAG_ZH;
    json_array_append_new(r->checks,
                          json_pack("{s:s, s:s, s:s, s:s, s:s?, s:o}", "id", id, "status", status_names[st],
                                    "title", zh ? title_zh : title_en, "detail", zh ? detail->zh : detail->en,
                                    "fix", st == DIAG_PASS || st == DIAG_SKIP ? NULL : zh ? fix_zh : fix_en,
                                    "evidence", evidence ? evidence : json_object()));
}

/* The certificate of a listing item ({"der": base64, …}); NULL if none. X509_free it. */
static X509 *item_cert(const json_t *item)
{
    const char *b64 = json_string_value(json_object_get(item, "der"));
    unsigned char der[8192];
    size_t len = 0;
    if (!b64 || mbedtls_base64_decode(der, sizeof der, &len, (const unsigned char *)b64, strlen(b64)) != 0)
        return NULL;
    return x509_from_der(der, len);
}

/* The last check added, when it is not a pass or skip and `cert` (may be
 * NULL) belongs to a deployment profile: "help" {name, phone, url} and one
 * sentence at the end of its fix that says where to go for `topic`. */
static void with_help(struct run *r, X509 *cert, enum help_topic topic)
{
    static const char *const verb_zh[] = {"续期", "解锁", "变更证书信息", "咨询"};
    static const char *const verb_en[] = {"Renew", "Unblock", "Change the certificate's details", "Get help"};
    json_t *check = json_array_get(r->checks, json_array_size(r->checks) - 1);
    const char *fix = json_string_value(json_object_get(check, "fix"));
    int zh = r->opt->lang == DIAG_ZH;
    struct profile_help h;
    char where[600], out[2048];
    if (!fix || !cert || profiles_help(cert, topic, &h) != 0 || (!h.url && !h.phone))
        return;
    if (zh)
        snprintf(where, sizeof where, "%s%s%s%s%s", h.url ? "请访问 " : "请", h.url ? h.url : "",
                 h.url && h.phone ? "，或" : "", h.phone ? "拨打 " : "", h.phone ? h.phone : "");
    else
        snprintf(where, sizeof where, "%s%s%s%s%s", h.url ? "at " : "", h.url ? h.url : "",
                 h.url && h.phone ? ", or " : "", h.phone ? (h.url ? "call " : ": call ") : "", h.phone ? h.phone : "");
    if (zh)
        snprintf(out, sizeof out, "%s%s%s（%s）。", fix, verb_zh[topic], where, h.name_zh);
    else
        snprintf(out, sizeof out, "%s %s%s%s (%s).", fix, verb_en[topic], h.phone && !h.url ? "" : " ", where,
                 h.name_en);
    json_object_set_new(check, "fix", json_string(out));
    json_object_set_new(check, "help", profile_help_json(&h, r->opt->lang));
}

int diag_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        a += *a == '.';
        b += *b == '.';
        if ((*a && (*a < '0' || *a > '9')) || (*b && (*b < '0' || *b > '9')))
            break;
    }
    return 0;
}

static void check_version(struct run *r)
{
    struct text d;
    /* The stricter of the portal's and the deployment profiles'. */
    const char *min = r->opt->min_version, *profiles = profiles_min_version();
    int old;
    if (profiles && (!min || diag_version_cmp(profiles, min) > 0))
        min = profiles;
    old = min && diag_version_cmp(UKEY_VERSION, min) < 0;
    if (old)
        say(&d, "助手版本 %s 低于本网站要求的 %s。", "Agent version %s is older than the %s this site needs.",
            UKEY_VERSION, min);
    else
        say(&d, "助手版本 %s。", "Agent version %s.", UKEY_VERSION);
    add(r, "agent.version", old ? DIAG_FAIL : DIAG_PASS, "证书助手版本", "Agent version", &d,
        "请安装最新版本的 ukey-agent 证书助手，然后刷新页面。",
        "Install the newest ukey-agent, then reload the page.",
        json_pack("{s:s, s:s?}", "version", UKEY_VERSION, "min_version", min));
}

static void check_tls(struct run *r)
{
    char path[4200], fp[65] = "";
    time_t not_after = 0, now = time(NULL);
    json_t *stores = trust_stores_json(r->opt->state_dir), *s;
    size_t i, trusted = 0;
    enum diag_status st;
    struct text d;
    long days;

    snprintf(path, sizeof path, "%s/%s", r->opt->state_dir, LOCALCA_CA_FILE);
    localca_fingerprint_file(path, fp);
    if (localca_leaf_not_after(r->opt->state_dir, &not_after) != 0 || !fp[0]) {
        say(&d, "没有找到助手的本地证书（%s）。", "The agent's local certificate is missing (%s).", r->opt->state_dir);
        add(r, "agent.tls", DIAG_FAIL, "本地安全连接", "Local secure connection", &d,
            "请重新启动证书助手（它会自动生成证书），然后运行“ukey-agent trust install”。",
            "Restart the agent (it makes a new certificate), then run \"ukey-agent trust install\".", NULL);
        json_decref(stores);
        return;
    }
    json_array_foreach(stores, i, s)
        trusted += json_is_true(json_object_get(s, "current_ca"));
    days = (long)((not_after - now) / 86400);
    if (not_after <= now) {
        st = DIAG_FAIL;
        say(&d, "本地证书已过期。", "The local certificate has expired.");
    } else if (trusted == 0) {
        st = DIAG_WARN;
        say(&d, "本地证书有效（还剩 %ld 天），但浏览器的信任库中都没有安装助手的根证书。",
            "The local certificate is valid (%ld days left) but no browser trust store holds the agent's CA.", days);
    } else if (days < EXPIRY_WARN_DAYS) {
        st = DIAG_WARN;
        say(&d, "本地证书将在 %ld 天后到期，助手会自动更新。", "The local certificate expires in %ld days; the agent renews it.",
            days);
    } else {
        st = DIAG_PASS;
        say(&d, "本地证书有效（还剩 %ld 天），已安装到 %zu 个信任库。",
            "The local certificate is valid (%ld days left) and trusted in %zu store(s).", days, trusted);
    }
    add(r, "agent.tls", st, "本地安全连接", "Local secure connection", &d,
        "运行“ukey-agent trust install”把助手的根证书安装到浏览器，然后重启浏览器。",
        "Run \"ukey-agent trust install\" to add the agent's CA to the browsers, then restart them.",
        json_pack("{s:s, s:I, s:o}", "ca_fingerprint_sha256", fp, "leaf_not_after", (json_int_t)not_after,
                  "stores", stores ? stores : json_array()));
}

static void check_certificates(struct run *r, json_t *items, STACK_OF(X509) *intermediates);
static void check_keymatch(struct run *r, json_t *tokens);
static void check_profiles(struct run *r, json_t *tokens);

/* PC/SC, readers and tokens, all from one listing. */
/* What the checks of the vendor-library backends say about them. */
struct module_kind {
    const char *id, *key;               /* the check's id, the listing's member */
    const char *noun_zh, *noun_en;      /* "PKCS#11 驱动", "PKCS#11 module(s)" */
    const char *title_zh, *title_en, *fix_zh, *fix_en;
};

static const struct module_kind pkcs11_kind = {
    "pkcs11.modules", "pkcs11", "PKCS#11 驱动", "PKCS#11 module(s)", "UKey 厂商驱动（PKCS#11）",
    "Token vendor modules (PKCS#11)",
    "重新安装 UKey 厂商提供的驱动程序，或在 agent.json 的 pkcs11_modules 中改正驱动文件的路径。",
    "Reinstall the token vendor's driver, or correct the module's path in pkcs11_modules of agent.json.",
};

static const struct module_kind skf_kind = {
    "skf.modules", "skf", "SKF 驱动", "SKF library(ies)", "UKey 厂商驱动（SKF，国密）",
    "Token vendor libraries (SKF, GM/T 0016)",
    "重新安装 UKey 厂商提供的国密驱动程序，或在 agent.json 的 skf_modules 中改正驱动文件（SKF 接口库）的路径。",
    "Reinstall the token vendor's GM/T driver, or correct the SKF library's path in skf_modules of agent.json.",
};

/* One SKF library's line: loaded or not, and the width of its ULONG. */
static void module_line(struct text *d, const json_t *m)
{
    const char *abi = json_string_value(json_object_get(m, "abi"));
    const char *path = json_string_value(json_object_get(m, "path"));
    const json_t *err = json_object_get(m, "error");
    struct text line;
    if (err)
        say(&line, " %s：不可用（%s）。", " %s: unusable (%s).", path,
            json_string_value(json_object_get(err, "detail")));
    else if (abi && strcmp(abi, "ulong64") == 0)
        say(&line, " %s：已加载，ULONG 为 64 位（LP64 厂商头文件）。", " %s: loaded, ULONG 64-bit (LP64 vendor header).",
            path);
    else if (abi)
        say(&line, " %s：已加载，ULONG 为 32 位（GM/T 0016）。", " %s: loaded, ULONG 32-bit (GM/T 0016).", path);
    else
        say(&line, " %s：已加载，接口位宽待插入 UKey 后确定。", " %s: loaded, ABI not known until a token is inserted.",
            path);
    snprintf(d->zh + strlen(d->zh), sizeof d->zh - strlen(d->zh), "%s", line.zh);
    snprintf(d->en + strlen(d->en), sizeof d->en - strlen(d->en), "%s", line.en);
}

/* The configured libraries of one backend (none configured: no check). */
static void check_modules(struct run *r, json_t *modules, const struct module_kind *k)
{
    size_t i, failed = 0;
    json_t *m, *first = NULL;
    struct text d;
    const char *fix_zh = k->fix_zh, *fix_en = k->fix_en;
    if (json_array_size(modules) == 0)
        return;
    json_array_foreach(modules, i, m) {
        if (json_object_get(m, "error") && !failed++)
            first = m;
    }
    if (failed && k == &pkcs11_kind)
        /* Each language takes its own noun; "%.0s" skips the other one. */
        say(&d, "%zu 个 %s%.0s不可用：%s %s。", "%zu %.0s%s unusable: %s %s.", failed, k->noun_zh, k->noun_en,
            json_string_value(json_object_get(first, "path")),
            json_string_value(json_object_get(json_object_get(first, "error"), "detail")));
    else if (failed)
        say(&d, "%zu 个 %s%.0s不可用。", "%zu %.0s%s unusable.", failed, k->noun_zh, k->noun_en);
    else
        say(&d, "已加载 %zu 个 %s%.0s。", "%zu %.0s%s loaded.", json_array_size(modules), k->noun_zh, k->noun_en);
    /* SKF: every library by name, with the ABI it was found to use. */
    json_array_foreach(modules, i, m) {
        if (k == &skf_kind)
            module_line(&d, m);
    }
    /* A library that stopped answering is not mended by reinstalling it. */
    if (json_is_true(json_object_get(first, "stuck"))) {
        fix_zh = "驱动停止了响应（常见于读取时拔出 UKey）。它恢复响应后助手会自动重新使用；否则请重新启动助手"
                 "（注销后重新登录即可）。反复出现时请联系 UKey 厂商。";
        fix_en = "The driver stopped answering (often after the token was pulled out while it was being read). "
                 "The agent uses it again once it answers; otherwise restart the agent (signing out and in again "
                 "does it). If it keeps happening, tell the token's vendor.";
    }
    add(r, k->id, failed ? DIAG_FAIL : DIAG_PASS, k->title_zh, k->title_en, &d, fix_zh, fix_en,
        json_pack("{s:O}", "modules", modules));
}

static void check_tokens(struct run *r)
{
    /* The checks that depend on PC/SC, with their titles (used when skipped). */
    static const struct {
        const char *id, *zh, *en;
    } skipped[] = {
        {"reader.present", "读卡器 / UKey 连接", "Reader / token connected"},
        {"reader.state", "UKey 响应", "Token answers"},
        {"token.recognised", "识别证书介质", "Certificate token recognised"},
        {"token.conflict", "与其他程序冲突", "Conflict with other programs"},
        {"pin.state", "PIN 码状态", "PIN state"},
        {"cert.validity", "证书有效期", "Certificate validity"},
        {"cert.chain", "证书链", "Certificate chain"},
        {"cert.crl.published", "证书吊销列表", "Revocation list published"},
        {"cert.revoked", "证书吊销状态", "Certificate revocation"},
        {"cert.keymatch", "证书与 UKey 密钥匹配", "Certificate matches the token's key"},
        {"system.clock", "系统时间", "System clock"},
    };
    json_t *list = NULL, *readers, *tokens, *rd, *t, *c;
    ukey_err e = tokens_list(&list);
    size_t i, j, n_cards = 0, mute = 0, busy = 0, unknown = 0;
    struct text d;
    const char *why = list ? json_string_value(json_object_get(json_object_get(list, "pcsc"), "error")) : NULL;

    check_modules(r, json_object_get(list, "pkcs11"), &pkcs11_kind);
    check_modules(r, json_object_get(list, "skf"), &skf_kind);
    if (e == UKEY_ERR_PCSC_UNAVAILABLE) {
        say(&d, "无法连接智能卡服务（%s）。", "The smart-card service cannot be reached (%s).", why ? why : "?");
        add(r, "pcsc.service", DIAG_FAIL, "智能卡服务", "Smart-card service", &d,
            "Windows：在“服务”中启动“Smart Card”；Linux：sudo apt install pcscd && sudo systemctl start pcscd。",
            "Windows: start the \"Smart Card\" service; Linux: sudo apt install pcscd && sudo systemctl start pcscd.",
            json_pack("{s:s?}", "error", why));
        for (i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
            say(&d, "智能卡服务不可用，未检查。", "Not checked: the smart-card service is not available.");
            add(r, skipped[i].id, DIAG_SKIP, skipped[i].zh, skipped[i].en, &d, NULL, NULL, NULL);
        }
        check_profiles(r, NULL);
        json_decref(list);
        return;
    }
    readers = json_object_get(list, "readers");
    tokens = json_object_get(list, "tokens");
    if (!json_is_true(json_object_get(json_object_get(list, "pcsc"), "available"))) {
        /* Down, but the PKCS#11 modules' and SKF libraries' tokens are still checked. */
        say(&d, "无法连接智能卡服务（%s），只检查 PKCS#11 和 SKF 驱动中的 UKey。",
            "The smart-card service cannot be reached (%s); only the PKCS#11 modules' and SKF libraries' tokens are "
            "checked.",
            why ? why : "?");
        add(r, "pcsc.service", DIAG_WARN, "智能卡服务", "Smart-card service", &d,
            "Windows：在“服务”中启动“Smart Card”；Linux：sudo apt install pcscd && sudo systemctl start pcscd。",
            "Windows: start the \"Smart Card\" service; Linux: sudo apt install pcscd && sudo systemctl start pcscd.",
            json_pack("{s:s?}", "error", why));
    } else {
        say(&d, "智能卡服务正常。", "The smart-card service answers.");
        add(r, "pcsc.service", DIAG_PASS, "智能卡服务", "Smart-card service", &d, NULL, NULL, NULL);
    }

    if (json_array_size(readers) == 0)
        say(&d, "没有发现读卡器或 UKey。", "No reader or token is connected.");
    else
        say(&d, "发现 %zu 个读卡器。", "%zu reader(s) found.", json_array_size(readers));
    add(r, "reader.present", json_array_size(readers) ? DIAG_PASS : DIAG_FAIL, "读卡器 / UKey 连接",
        "Reader / token connected", &d,
        "请插好 UKey（指示灯应亮起）；如果灯不亮，换一个 USB 口（最好是主机背面的），不要使用 USB 延长线或集线器。",
        "Plug the token in (its light should come on); if it stays dark, try another USB port (preferably at the back), without extension cables or hubs.",
        json_pack("{s:O}", "readers", readers));

    json_array_foreach(readers, i, rd) {
        const char *state = json_string_value(json_object_get(rd, "state"));
        const char *code = json_string_value(json_object_get(json_object_get(rd, "error"), "code"));
        n_cards += strcmp(state, "empty") != 0;
        mute += strcmp(state, "unresponsive") == 0;
        busy += strcmp(state, "in_use") == 0 || (code && strcmp(code, "TOKEN_BUSY") == 0);
        unknown += code && (strcmp(code, "TOKEN_NOT_SUPPORTED") == 0 || strcmp(code, "CARD_DATA_INVALID") == 0);
    }
    if (n_cards == 0)
        say(&d, "读卡器中没有卡片。", "No card in any reader.");
    else if (mute)
        say(&d, "%zu 张卡片没有响应。", "%zu card(s) do not answer.", mute);
    else
        say(&d, "卡片通电并正常响应。", "The card(s) are powered and answer.");
    add(r, "reader.state", n_cards == 0 ? DIAG_SKIP : mute ? DIAG_FAIL : DIAG_PASS, "UKey 响应", "Token answers", &d,
        "拔出 UKey，等待 5 秒后重新插入；仍无响应时换一个 USB 口或另一台电脑试试，可能是 UKey 损坏。",
        "Unplug the token, wait 5 seconds and plug it in again; if it still does not answer, try another USB port or computer: the token may be damaged.",
        NULL);

    if (n_cards == 0)
        say(&d, "没有插入卡片，未检查。", "Not checked: no card inserted.");
    else if (unknown)
        say(&d, "%zu 张卡片能响应，但不是可识别的证书介质（见证据中的 ATR）。",
            "%zu card(s) answer but are not a recognised certificate token (ATR in the evidence).", unknown);
    else
        say(&d, "已识别 %zu 个 UKey。", "%zu token(s) recognised.", json_array_size(tokens));
    add(r, "token.recognised", n_cards == 0 ? DIAG_SKIP : unknown ? DIAG_FAIL : DIAG_PASS, "识别证书介质",
        "Certificate token recognised", &d,
        "确认插入的是发证机构发放的 UKey；如果您的 UKey 需要厂商驱动（PKCS#11），请安装后重试，或联系发证机构。",
        "Make sure the inserted device is the token your issuer gave you; if it needs the vendor's driver (PKCS#11), install it, or contact the issuer.",
        NULL);

    if (busy)
        say(&d, "%zu 个 UKey 正被其他程序独占。", "%zu token(s) are held exclusively by another program.", busy);
    else
        say(&d, "没有其他程序独占 UKey。", "No other program holds a token exclusively.");
    add(r, "token.conflict", n_cards == 0 ? DIAG_SKIP : busy ? DIAG_FAIL : DIAG_PASS, "与其他程序冲突",
        "Conflict with other programs", &d,
        "关闭旧版证书助手、网银控件等可能占用 UKey 的程序（必要时在任务管理器中结束），然后重新插拔 UKey。",
        "Close old certificate helpers, banking plug-ins and other programs that may hold the token (end them in the task manager if needed), then re-plug the token.",
        NULL);

    {
        size_t blocked = 0, low = 0, wrong = 0, puk_blocked = 0, puk_low = 0;
        json_t *ev = json_array(), *help_token = NULL; /* the first token in trouble, for the profile's help */
        json_array_foreach(tokens, i, t) {
            json_t *pin = json_object_get(t, "pin"), *puk = json_object_get(t, "puk");
            json_int_t left = json_integer_value(json_object_get(pin, "retries_left"));
            int is_blocked = json_is_true(json_object_get(pin, "blocked"));
            int is_puk_blocked = json_is_true(json_object_get(puk, "blocked"));
            blocked += is_blocked;
            low += !is_blocked && json_is_integer(json_object_get(pin, "retries_left")) && left <= 1;
            wrong += !is_blocked && json_is_true(json_object_get(pin, "retries_low"));
            puk_blocked += is_puk_blocked;
            puk_low += !is_puk_blocked && json_is_integer(json_object_get(puk, "retries_left")) &&
                       json_integer_value(json_object_get(puk, "retries_left")) <= 1;
            if (!help_token && (blocked || low || wrong || puk_blocked || puk_low))
                help_token = t;
            json_array_append_new(ev, json_pack("{s:O, s:O, s:O*}", "token", json_object_get(t, "id"), "pin", pin,
                                                "puk", puk));
        }
        if (blocked && puk_blocked)
            say(&d, "UKey 的 PIN 和 PUK 都已锁定，只能由发证机构处理。",
                "Both the PIN and the PUK of a token are blocked; only its issuer can help.");
        else if (blocked)
            say(&d, "%zu 个 UKey 的 PIN 已锁定。", "The PIN of %zu token(s) is blocked.", blocked);
        else if (low)
            say(&d, "PIN 只剩最后一次重试机会。", "Only one PIN attempt is left.");
        else if (puk_blocked)
            say(&d, "UKey 的 PUK 已锁定：PIN 仍可使用，但 PIN 一旦锁定只能由发证机构解锁。",
                "The PUK of a token is blocked: the PIN still works, but once it is blocked only the issuer can unblock it.");
        else if (puk_low)
            say(&d, "PUK 只剩最后一次重试机会，再错一次 UKey 将无法自行解锁。",
                "Only one PUK attempt is left; one more wrong PUK and the token can no longer be unblocked here.");
        else if (wrong)
            say(&d, "上次正确输入 PIN 码之后，有人输错过 PIN 码；这种 UKey 不告知还剩几次机会。",
                "A wrong PIN was typed since the last right one; this kind of token does not tell how many tries are left.");
        else
            say(&d, "PIN 状态正常。", "The PIN state is fine.");
        add(r, "pin.state",
            json_array_size(tokens) == 0 ? DIAG_SKIP
            : blocked                    ? DIAG_FAIL
            : low || wrong || puk_blocked || puk_low ? DIAG_WARN
                                                     : DIAG_PASS,
            "PIN 码状态", "PIN state", &d,
            "PIN 已锁定时，用 PUK 解锁（诊断页面的“解锁”），或带 UKey 到发证机构；只剩一次机会时请先确认 PIN 码再输入。",
            "A blocked PIN is unblocked with the PUK (\"Unblock\" on the diagnostic page) or by the issuer; with one try left, make sure of the PIN before typing it.",
            ev);
        {
            X509 *cert = NULL;
            json_array_foreach(json_object_get(help_token, "certificates"), j, c)
                if (!cert || !profiles_for_cert(cert)) {
                    X509_free(cert);
                    cert = item_cert(c);
                }
            with_help(r, cert, HELP_UNLOCK);
            X509_free(cert);
        }
    }

    {
        json_t *items = json_array();
        json_array_foreach(tokens, i, t)
            json_array_foreach(json_object_get(t, "certificates"), j, c)
                json_array_append_new(items, json_pack("{s:O, s:O, s:O}", "token", json_object_get(t, "id"),
                                                       "certificate", json_object_get(c, "id"), "der",
                                                       json_object_get(c, "der")));
        check_certificates(r, items, NULL);
        json_decref(items);
    }
    check_keymatch(r, tokens);
    check_profiles(r, tokens);
    json_decref(list);
}

static enum diag_status worst(enum diag_status a, enum diag_status b)
{
    static const int rank[] = {1, 2, 3, 0}; /* skip < pass < warn < fail */
    return rank[a] >= rank[b] ? a : b;
}

/* system.clock: this computer's time against the Date of the revocation
 * server's answer; a wrong clock breaks every validity check. */
static void check_clock(struct run *r, time_t server_date)
{
    time_t now = time(NULL);
    long skew = server_date ? (long)(now - server_date) : 0;
    long abs_skew = skew < 0 ? -skew : skew;
    enum diag_status st = !server_date ? DIAG_SKIP : abs_skew > 86400 ? DIAG_FAIL : abs_skew > 300 ? DIAG_WARN : DIAG_PASS;
    struct text d;
    if (!server_date)
        say(&d, "未检查：没有可对照的网络时间（需要能访问吊销列表服务器）。",
            "Not checked: no server time to compare with (needs a reachable revocation server).");
    else if (st == DIAG_PASS)
        say(&d, "电脑时间正确（与服务器相差 %ld 秒）。", "The computer's clock is right (%ld s from the server's).", skew);
    else
        say(&d, "电脑时间与服务器相差 %ld 秒。", "The computer's clock is %ld s off the server's.", skew);
    add(r, "system.clock", st, "系统时间", "System clock", &d,
        "请把电脑时间、日期和时区设为正确（启用“自动设置时间”），否则证书会被误判为过期或尚未生效。",
        "Set the computer's date, time and time zone right (turn on automatic time), or certificates look expired or not yet valid.",
        json_pack("{s:I, s:I}", "local", (json_int_t)now, "server", (json_int_t)server_date));
}

/* cert.validity, cert.chain, cert.crl.published, cert.revoked and
 * system.clock over `items` ([{"der": base64, ...ids}]), each looked at by
 * diag/certs.c; the evidence lists every certificate with its ids. */
static void check_certificates(struct run *r, json_t *items, STACK_OF(X509) *intermediates)
{
    struct cert_env_options eo = {r->opt->ca_file, r->opt->ca_dir, r->opt->cache_dir, r->opt->fetch_timeout_s};
    struct cert_env *env = cert_env_new(&eo);
    enum diag_status validity = DIAG_SKIP, chain = DIAG_SKIP, published = DIAG_SKIP, revoked = DIAG_SKIP;
    json_t *ev = json_array(), *item;
    size_t i, n = 0, expired = 0, soon = 0, not_published = 0;
    X509 *help_cert[4] = {NULL, NULL, NULL, NULL}; /* validity, chain, published, revoked */
    struct text d;

    json_array_foreach(items, i, item) {
        const char *b64 = json_string_value(json_object_get(item, "der"));
        unsigned char der[8192];
        size_t len = 0;
        struct cert_look l;
        const char *v;
        enum diag_status verdicts[4];
        if (!env || !b64 ||
            mbedtls_base64_decode(der, sizeof der, &len, (const unsigned char *)b64, strlen(b64)) != 0)
            continue;
        cert_look(env, der, len, intermediates, &l);
        n++;
        /* The first certificate that is not fine, per check, for the profile's help. */
        verdicts[0] = l.validity, verdicts[1] = l.chain, verdicts[2] = l.published, verdicts[3] = l.revoked;
        for (int k = 0; k < 4; k++)
            if (!help_cert[k] && (verdicts[k] == DIAG_WARN || verdicts[k] == DIAG_FAIL))
                help_cert[k] = x509_from_der(der, len);
        validity = worst(validity, l.validity);
        chain = worst(chain, l.chain);
        published = worst(published, l.published);
        revoked = worst(revoked, l.revoked);
        v = json_string_value(json_object_get(l.evidence, "validity"));
        expired += v && (strcmp(v, "expired") == 0 || strcmp(v, "not_yet_valid") == 0);
        soon += v && strcmp(v, "expiring_soon") == 0;
        not_published += json_is_true(json_object_get(json_object_get(l.evidence, "crl"), "not_published"));
        json_object_update_missing(l.evidence, item);
        json_object_del(l.evidence, "der");
        json_array_append_new(ev, l.evidence);
    }

    if (expired)
        say(&d, "%zu 张证书已过期或尚未生效。", "%zu certificate(s) expired or not yet valid.", expired);
    else if (soon)
        say(&d, "%zu 张证书即将到期（%d 天内，或其发证机构配置的提醒天数内）。",
            "%zu certificate(s) expire soon (within %d days, or their issuer profile's reminder window).", soon,
            EXPIRY_WARN_DAYS);
    else
        say(&d, "%zu 张证书均在有效期内。", "All %zu certificate(s) are within their validity.", n);
    add(r, "cert.validity", n ? validity : DIAG_SKIP, "证书有效期", "Certificate validity", &d,
        "证书过期或即将过期时，请按发证机构的流程办理证书更新（续期），更新后重新插入 UKey；如刚更新，请检查电脑时间是否正确。",
        "When a certificate has expired or is about to, renew it through the issuer, then re-plug the token; if it was just renewed, check the computer's clock.",
        json_incref(ev));
    with_help(r, help_cert[0], HELP_RENEW);

    if (!env || !cert_env_has_anchors(env))
        say(&d, "未配置信任的根证书（certs/ 目录或 --ca-file），未检查证书链。",
            "Not checked: no trust anchors configured (the certs/ directory or --ca-file).");
    else if (chain == DIAG_FAIL)
        say(&d, "有证书无法验证到受信任的根证书。", "A certificate does not chain to a trusted CA.");
    else
        say(&d, "%zu 张证书的证书链完整。", "The chain of %zu certificate(s) is complete.", n);
    add(r, "cert.chain", n ? chain : DIAG_SKIP, "证书链", "Certificate chain", &d,
        "证书不是由受信任的机构签发，或缺少中级证书：请确认使用的是正确的 UKey，并联系发证机构。",
        "The certificate is not from a trusted issuer, or an intermediate is missing: check that this is the right token and contact the issuer.",
        json_incref(ev));
    with_help(r, help_cert[1], HELP_SERVICE);

    if (published == DIAG_WARN && not_published)
        say(&d, "证书吊销列表（CRL）尚未发布。新签发的证书，其 CRL 可能尚未生成。",
            "The certificate revocation list (CRL) is not published yet. For a newly issued certificate the CRL may not exist yet.");
    else if (published == DIAG_WARN)
        say(&d, "无法获取有效的证书吊销列表（CRL），原因见证据。",
            "No valid certificate revocation list (CRL) could be fetched; the evidence says why.");
    else if (published == DIAG_PASS)
        say(&d, "已获取证书吊销列表。", "The certificate revocation list was fetched.");
    else
        say(&d, "证书中没有吊销列表地址，未检查。", "Not checked: the certificates name no CRL address.");
    add(r, "cert.crl.published", n ? published : DIAG_SKIP, "证书吊销列表", "Revocation list published", &d,
        "新办理的证书需要等待发证机构生成吊销列表（最长约 48 小时）后再登录；如已超过 48 小时，请检查网络或代理设置并联系发证机构。",
        "A new certificate can be used once the issuer publishes its CRL (up to about 48 hours); after that, check the network or proxy and contact the issuer.",
        json_incref(ev));
    with_help(r, help_cert[2], HELP_SERVICE);

    if (revoked == DIAG_FAIL)
        say(&d, "证书已被吊销。", "A certificate has been revoked.");
    else if (revoked == DIAG_PASS)
        say(&d, "证书未被吊销。", "No certificate is revoked.");
    else if (revoked == DIAG_WARN)
        say(&d, "吊销状态服务（OCSP）不认识该证书：它可能不是这家机构签发的。",
            "The revocation status service (OCSP) does not know a certificate: it may not come from this issuer.");
    else
        say(&d, "未检查吊销状态（没有可用且可验证的 CRL 或 OCSP 答复）。",
            "Not checked: no CRL or OCSP answer that could be fetched and verified.");
    add(r, "cert.revoked", n ? revoked : DIAG_SKIP, "证书吊销状态", "Certificate revocation", &d,
        revoked == DIAG_FAIL ? "证书已被吊销，无法用于登录：请到发证机构办理证书补办或更新。"
                             : "请确认 UKey 是发证机构发放的；如有疑问请联系发证机构核实证书。",
        revoked == DIAG_FAIL ? "A revoked certificate cannot log in: ask the issuer for a new certificate."
                             : "Make sure the token comes from the issuer; if in doubt, ask the issuer to check the certificate.",
        ev);
    with_help(r, help_cert[3], revoked == DIAG_FAIL ? HELP_RENEW : HELP_SERVICE);
    for (int k = 0; k < 4; k++)
        X509_free(help_cert[k]);
    check_clock(r, env ? cert_env_server_date(env) : 0);
    cert_env_free(env);
}

/* cert.keymatch: the card signs with each key it uses without a PIN and the
 * certificate verifies it; keys that need the PIN are skipped (saying so). */
static void check_keymatch(struct run *r, json_t *tokens)
{
    enum diag_status st = DIAG_SKIP;
    json_t *ev = json_array(), *t, *c;
    size_t i, j, checked = 0, bad = 0;
    struct text d;

    json_array_foreach(tokens, i, t) {
        json_array_foreach(json_object_get(t, "certificates"), j, c) {
            const char *verdict = "skip: the card uses this key only after a PIN";
            if (!json_is_true(json_object_get(c, "pin_required"))) {
                ukey_err e = tokens_check_key(json_string_value(json_object_get(t, "id")),
                                              json_string_value(json_object_get(c, "id")));
                checked++;
                bad += e != UKEY_OK;
                verdict = e == UKEY_OK ? "match" : "mismatch";
            }
            json_array_append_new(ev, json_pack("{s:O, s:O, s:s}", "token", json_object_get(t, "id"), "certificate",
                                                json_object_get(c, "id"), "verdict", verdict));
        }
    }
    if (checked)
        st = bad ? DIAG_FAIL : DIAG_PASS;
    if (bad)
        say(&d, "UKey 中有证书与卡内密钥不匹配。", "A certificate on the token does not match the token's key.");
    else if (checked)
        say(&d, "已检查 %zu 张证书，均与卡内密钥匹配。", "%zu certificate(s) checked: each matches the token's key.", checked);
    else
        say(&d, "未检查：这些密钥只有在输入 PIN 后才能使用。", "Not checked: the token uses these keys only after a PIN.");
    add(r, "cert.keymatch", st, "证书与 UKey 密钥匹配", "Certificate matches the token's key", &d,
        "证书与 UKey 中的密钥不一致（可能写错了证书或 UKey 被重新初始化）：请联系发证机构重新写入证书。",
        "The certificate does not belong to the token's key (a wrong certificate was written, or the token was re-initialised): ask the issuer to write the certificate again.",
        ev);
}

/* profiles: the deployment profiles loaded, and which tokens' certificates
 * they cover (the listing's "profile", profiles_annotate_cert). */
static void check_profiles(struct run *r, json_t *tokens)
{
    json_t *loaded = profiles_json(r->opt->owner), *list = json_object_get(loaded, "profiles"), *p, *t, *c;
    json_t *covered = json_array();
    size_t i, j, n_certs = 0;
    char ids[256] = "";
    struct text d;

    json_array_foreach(list, i, p)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", i ? ", " : "",
                 json_string_value(json_object_get(p, "id")));
    json_array_foreach(tokens, i, t)
        json_array_foreach(json_object_get(t, "certificates"), j, c) {
            n_certs++;
            if (json_object_get(c, "profile"))
                json_array_append_new(covered, json_pack("{s:O, s:O, s:O}", "token", json_object_get(t, "id"),
                                                         "certificate", json_object_get(c, "id"), "profile",
                                                         json_object_get(c, "profile")));
        }
    if (json_array_size(list) == 0)
        say(&d, "没有安装发证机构的部署配置（profile）。", "No deployment profile of an issuer is installed.");
    else
        say(&d, "已加载 %zu 个部署配置（%s）；%zu 张证书中有 %zu 张属于其中之一。",
            "%zu deployment profile(s) loaded (%s); %zu of %zu certificate(s) belong to one.",
            json_array_size(list), ids, json_array_size(covered), n_certs);
    add(r, "profiles", json_array_size(list) ? DIAG_PASS : DIAG_SKIP, "发证机构配置", "Issuer profiles", &d,
        "请安装发证机构提供的部署配置文件（见 docs/PROFILES.md）。",
        "Install the deployment profile your issuer provides (see docs/PROFILES.md).",
        json_pack("{s:O, s:o}", "profiles", list ? list : json_null(), "certificates", covered));
    json_decref(loaded);
}

/* Proxies that would catch loopback or CRL fetches (diag/proxy.h). */
static void check_proxy(struct run *r)
{
    struct diag_proxy p;
    struct text d;
    diag_proxy_read(&p);
    if (!p.proxy[0])
        say(&d, "没有设置代理。", "No proxy is set.");
    else if (p.loopback_exempt)
        say(&d, "设置了代理（%s），本机地址已排除。", "A proxy is set (%s) and loopback is exempt.", p.proxy);
    else
        say(&d, "设置了代理（%s），但本机地址 127.0.0.1 没有排除。", "A proxy is set (%s) without exempting 127.0.0.1.", p.proxy);
    add(r, "network.proxy", p.proxy[0] && !p.loopback_exempt ? DIAG_WARN : DIAG_PASS, "代理设置", "Proxy settings", &d,
        p.fix_zh, p.fix_en,
        json_pack("{s:s?, s:s?}", "proxy_variable", p.proxy[0] ? p.proxy : NULL, "no_proxy",
                  p.exceptions[0] ? p.exceptions : NULL));
}

/* origins.http: an allowed http:// origin can be squatted by any local user
 * who binds its port first (a loopback one) or rewritten on the way (any
 * other); warn for each one not marked "insecure_http": true. Only for the
 * agent's owner: the allow-list is not shown to portals. */
static void check_http_origins(struct run *r)
{
    const struct agent_config *cfg = r->opt->cfg;
    json_t *ev = json_array();
    const char *first = NULL;
    size_t warned = 0, accepted = 0;
    struct text d;
    for (size_t i = 0; ev && i < cfg->n_allow_origins; i++) {
        const char *o = cfg->allow_origins[i];
        if (strncmp(o, "http://", 7) != 0)
            continue;
        if (cfg->origin_insecure_http[i])
            accepted++;
        else if (!warned++)
            first = o;
        json_array_append_new(ev, json_pack("{s:s, s:b}", "origin", o, "insecure_http", cfg->origin_insecure_http[i]));
    }
    if (warned)
        say(&d, "%zu 个允许的网站使用不加密的 http://（如 %s）：本机的其他用户可以抢先占用该端口（或在网络上篡改页面），冒充该网站使用 UKey。",
            "%zu allowed site(s) use unencrypted http:// (such as %s): another user of this computer can bind that port "
            "first (or the page can be altered on the network) and act as that site with the token.",
            warned, first);
    else if (accepted)
        say(&d, "%zu 个 http:// 网站已在配置中明确接受（insecure_http）。",
            "%zu http:// site(s) are accepted explicitly in the configuration (insecure_http).", accepted);
    else
        say(&d, "所有允许的网站都使用 https://。", "Every allowed site uses https://.");
    add(r, "origins.http", warned ? DIAG_WARN : DIAG_PASS, "允许的网站（http://）", "Allowed sites over http://", &d,
        "请把 allow_origins 中的 http:// 地址改为该网站的 https:// 地址。只有确知风险时（例如本机的演示门户），才在 agent.json "
        "中为该项写 {\"origin\": \"http://…\", \"insecure_http\": true}。",
        "Replace the http:// entries of allow_origins with the sites' https:// addresses. Only when the risk is known "
        "and accepted (such as a demo portal on this computer) write {\"origin\": \"http://…\", \"insecure_http\": true} "
        "in agent.json.",
        json_pack("{s:o}", "http_origins", ev ? ev : json_array()));
}

/* The first `two` (two lower-case letters) in `s` in any case, or NULL. */
static const char *find_pair(const char *s, const char *two)
{
    for (; s && s[0] && s[1]; s++)
        if (strncasecmp(s, two, 2) == 0)
            return s;
    return NULL;
}

enum diag_lang diag_lang_from(const char *value)
{
    /* English only when it is asked for before any Chinese. */
    const char *en = find_pair(value, "en"), *zh = find_pair(value, "zh");
    return en && (!zh || en < zh) ? DIAG_EN : DIAG_ZH;
}

static int severity(const json_t *check)
{
    const char *s = json_string_value(json_object_get(check, "status"));
    return strcmp(s, "fail") == 0 ? 0 : strcmp(s, "warn") == 0 ? 1 : strcmp(s, "pass") == 0 ? 2 : 3;
}

void diag_options_from_config(struct diag_options *opt, const struct agent_config *cfg)
{
    static __thread char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", cfg->state_dir);
    opt->state_dir = cfg->state_dir;
    opt->ca_file = cfg->ca_file;
    opt->ca_dir = config_ca_dir(cfg);
    opt->cache_dir = cache;
    opt->fetch_timeout_s = cfg->fetch_timeout_s;
    opt->cfg = cfg;
}

/* "CN=张三, O=测试单位" -> "CN=张*, O=测*": the first character of each
 * value stays, so the help desk can still tell certificates apart. A bare
 * value (`is_dn` 0) is masked the same way. */
static json_t *masked(const char *text, int is_dn)
{
    char *out = malloc(2 * strlen(text) + 2), *o = out;
    enum { NAME, FIRST, REST } state = is_dn ? NAME : FIRST;
    json_t *j;
    if (!out)
        return NULL;
    for (const char *p = text; *p; p++) {
        if (state == NAME) {
            *o++ = *p;
            state = *p == '=' ? FIRST : NAME;
        } else if (*p == ',' && is_dn) {
            *o++ = *p;
            state = NAME;
        } else if (state == FIRST) {
            *o++ = *p; /* the whole first UTF-8 character */
            if ((p[1] & 0xC0) != 0x80) {
                *o++ = '*';
                state = REST;
            }
        }
    }
    *o = '\0';
    j = json_string(out);
    free(out);
    return j;
}

/* `text` with the home directory (util/dirs.h: $HOME, %USERPROFILE%; as a
 * whole path, followed by '/' or by no name character) written "~", since a
 * path names the OS user
 * (sql:/home/zhang/.pki/nssdb); NULL when `text` holds none, or out of
 * memory. Caller frees. The one path masking of every report. */
static char *home_masked(const char *text)
{
    const char *env = dirs_home(), *p = text, *hit;
    char home[1024], *out, *o;
    size_t hl;
    int found = 0;
    snprintf(home, sizeof home, "%s", env ? env : "");
    hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        home[--hl] = '\0';
    if (hl < 2 || !(out = malloc(strlen(text) + 1)))
        return NULL; /* no home, or "/": nothing that names a user */
    o = out;
    while ((hit = strstr(p, home)) != NULL) {
        char next = hit[hl];
        int whole = !((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9') ||
                      next == '.' || next == '-' || next == '_' || (next & 0x80));
        memcpy(o, p, (size_t)(hit - p) + (whole ? 0 : 1));
        o += (hit - p) + (whole ? 0 : 1);
        if (whole)
            *o++ = '~';
        p = hit + (whole ? hl : 1);
        found |= whole;
    }
    strcpy(o, p);
    if (!found) {
        free(out);
        return NULL;
    }
    return out;
}

/* Masks the home directory in every string of `v` and, with `names`,
 * people's and companies' names, dropping the certificates' DER and their
 * subject fields and Chinese extensions (which hold them too). */
static void mask_report(json_t *v, int names)
{
    const char *key;
    json_t *m, *x;
    size_t i;
    void *tmp;
    char *path;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (json_is_string(x) && (path = home_masked(json_string_value(x)))) {
                json_array_set_new(v, i, json_string(path));
                free(path);
            } else {
                mask_report(x, names);
            }
        }
        return;
    }
    json_object_foreach_safe(v, tmp, key, x) {
        if (names && (strcmp(key, "der") == 0 || strcmp(key, "subject_fields") == 0 ||
                      strcmp(key, "cn_extensions") == 0))
            json_object_del(v, key);
        else if (names && json_is_string(x) &&
                 (strcmp(key, "subject") == 0 || strcmp(key, "issuer") == 0 || strcmp(key, "subject_cn") == 0) &&
                 (m = masked(json_string_value(x), strcmp(key, "subject_cn") != 0)))
            json_object_set_new(v, key, m);
        else if (json_is_string(x) && (path = home_masked(json_string_value(x)))) {
            json_object_set_new(v, key, json_string(path));
            free(path);
        } else
            mask_report(x, names);
    }
}

/* The report: failures first, then warnings, passes, skips (stable within
 * each), with the counts. Takes r->checks. */
static json_t *report(struct run *r)
{
    json_t *sorted = json_array(), *c, *summary;
    size_t i;
    int counts[4] = {0, 0, 0, 0};
    for (int level = 0; level < 4; level++)
        json_array_foreach(r->checks, i, c)
            if (severity(c) == level)
                json_array_append(sorted, c), counts[level]++;
    json_decref(r->checks);
    if (r->opt->mask_names || !r->opt->owner)
        mask_report(sorted, r->opt->mask_names);
    summary = json_pack("{s:i, s:i, s:i, s:i}", "fail", counts[0], "warn", counts[1], "pass", counts[2], "skip", counts[3]);
    return json_pack("{s:o, s:o, s:s, s:s, s:I, s:b}", "checks", sorted, "summary", summary, "lang",
                     r->opt->lang == DIAG_ZH ? "zh-CN" : "en", "agent_version", UKEY_VERSION, "generated_at",
                     (json_int_t)time(NULL), "names_masked", r->opt->mask_names);
}

json_t *diag_run(const struct diag_options *opt)
{
    struct run r = {opt, json_array()};
    if (!r.checks)
        return NULL;
    check_version(&r);
    check_tls(&r);
    check_tokens(&r);
    check_proxy(&r);
    if (opt->owner && opt->cfg)
        check_http_origins(&r);
    return report(&r);
}

json_t *diag_check_certificate(const struct diag_options *opt, const unsigned char *der, size_t len,
                               STACK_OF(X509) *intermediates)
{
    struct run r = {opt, json_array()};
    json_t *cert = x509_cert_json(der, len), *out, *items;
    /* The check reads the certificate as a token listing shows it. */
    items = cert ? json_pack("[{s:s, s:O}]", "certificate", "certificate", "der", json_object_get(cert, "der"))
                 : NULL;
    if (!r.checks || !items) {
        json_decref(r.checks);
        json_decref(cert);
        json_decref(items);
        return NULL;
    }
    check_certificates(&r, items, intermediates);
    json_decref(items);
    out = report(&r);
    if (out && (opt->mask_names || !opt->owner))
        mask_report(cert, opt->mask_names);
    if (out)
        json_object_set_new(out, "certificate", cert);
    else
        json_decref(cert);
    return out;
}
