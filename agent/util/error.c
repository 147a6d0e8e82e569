/* The error table: HTTP status, stable code and bilingual message per ukey_err. */
#include "util/error.h"

struct err_info {
    unsigned status;
    const char *code;
    const char *zh;
    const char *en;
};

static struct err_info err_lookup(ukey_err e)
{
    switch (e) {
    case UKEY_OK:
        return (struct err_info){200, "OK", "成功。", "Success."};
    case UKEY_ERR_INTERNAL:
        return (struct err_info){500, "INTERNAL_ERROR",
            "助手程序内部错误。请重试；如仍失败，请运行“ukey-agent doctor”并把报告发给技术支持。",
            "Internal error in the agent. Try again; if it persists, run \"ukey-agent doctor\" and send the report to support."};
    case UKEY_ERR_OUT_OF_MEMORY:
        return (struct err_info){503, "OUT_OF_MEMORY",
            "助手程序内存不足。请关闭一些程序后重试。",
            "The agent ran out of memory. Close some programs and try again."};
    case UKEY_ERR_NOT_FOUND:
        return (struct err_info){404, "NOT_FOUND",
            "请求的地址不存在。请检查接口路径（见 docs/API.md）。",
            "No such resource. Check the API path (see docs/API.md)."};
    case UKEY_ERR_METHOD_NOT_ALLOWED:
        return (struct err_info){405, "METHOD_NOT_ALLOWED",
            "该地址不支持此请求方法。",
            "This resource does not support the request method."};
    case UKEY_ERR_HOST_NOT_ALLOWED:
        return (struct err_info){421, "HOST_NOT_ALLOWED",
            "请求的主机名不是本机助手的地址，已拒绝（防止 DNS 重绑定攻击）。请使用 https://127.0.0.1:端口 访问。",
            "The Host header does not name this agent, so the request was refused (DNS rebinding protection). Use https://127.0.0.1:PORT."};
    case UKEY_ERR_ORIGIN_NOT_ALLOWED:
        return (struct err_info){403, "ORIGIN_NOT_ALLOWED",
            "该网站未被授权调用本机证书助手。如果这是您单位的正式门户网站，请联系管理员把它加入允许列表。",
            "This website is not allowed to use the certificate agent. If it is your organisation's portal, ask the administrator to add it to the allowed origins."};
    case UKEY_ERR_BAD_REQUEST:
        return (struct err_info){400, "INVALID_REQUEST",
            "请求格式不正确。",
            "The request is malformed."};
    case UKEY_ERR_UNSUPPORTED_MEDIA_TYPE:
        return (struct err_info){415, "UNSUPPORTED_MEDIA_TYPE",
            "请求内容类型必须是 application/json。",
            "The request body must be sent as Content-Type: application/json."};
    case UKEY_ERR_BODY_TOO_LARGE:
        return (struct err_info){413, "BODY_TOO_LARGE",
            "请求内容过大，已拒绝。",
            "The request body is too large."};
    case UKEY_ERR_INVALID_JSON:
        return (struct err_info){400, "INVALID_JSON",
            "请求内容不是有效的 JSON 对象。",
            "The request body is not a valid JSON object."};
    case UKEY_ERR_PCSC_UNAVAILABLE:
        return (struct err_info){503, "PCSC_UNAVAILABLE",
            "智能卡服务未运行，无法识别 UKey。Windows：启动“Smart Card”服务；Linux：安装并启动 pcscd（sudo systemctl start pcscd）。",
            "The smart-card service is not running, so no token can be seen. Windows: start the \"Smart Card\" service; Linux: install and start pcscd (sudo systemctl start pcscd)."};
    case UKEY_ERR_TOKEN_NOT_FOUND:
        return (struct err_info){404, "TOKEN_NOT_FOUND",
            "找不到该 UKey。请确认 UKey 已插好（指示灯亮），然后刷新。",
            "No such token. Make sure the token is plugged in (its light is on), then refresh."};
    case UKEY_ERR_TOKEN_REMOVED:
        return (struct err_info){410, "TOKEN_REMOVED",
            "操作过程中 UKey 被拔出。请重新插入 UKey 后再试。",
            "The token was removed during the operation. Plug it in again and retry."};
    case UKEY_ERR_TOKEN_BUSY:
        return (struct err_info){409, "TOKEN_BUSY",
            "UKey 正被其他程序独占使用（例如旧版证书助手或网银控件）。请关闭这些程序后重试。",
            "Another program holds the token exclusively (for example an old certificate helper or banking plug-in). Close it and retry."};
    case UKEY_ERR_TOKEN_NOT_SUPPORTED:
        return (struct err_info){422, "TOKEN_NOT_SUPPORTED",
            "无法识别此证书介质：读卡器中的卡片不是受支持的 UKey 类型。",
            "The card in the reader is not a supported token type."};
    case UKEY_ERR_CARD_DATA_INVALID:
        return (struct err_info){502, "CARD_DATA_INVALID",
            "UKey 返回的数据格式错误。请拔出后重新插入；如仍出现，UKey 可能已损坏，请联系发证机构。",
            "The token returned malformed data. Unplug it and plug it in again; if it persists the token may be damaged: contact the issuer."};
    case UKEY_ERR_CARD_ERROR:
        return (struct err_info){502, "CARD_ERROR",
            "UKey 没有正常响应。请拔出后重新插入，或换一个 USB 口再试。",
            "The token did not answer as expected. Unplug it and plug it in again, or try another USB port."};
    case UKEY_ERR_PIN_FORMAT:
        return (struct err_info){400, "PIN_FORMAT",
            "PIN 码格式不正确（PIV UKey 为 6 到 8 位数字）。本次未提交给 UKey，不会消耗重试次数。",
            "The PIN has the wrong format (6 to 8 digits for PIV tokens). It was not sent to the token, so no attempt was used."};
    case UKEY_ERR_PIN_INCORRECT:
        return (struct err_info){403, "PIN_INCORRECT",
            "PIN 码错误。请注意剩余重试次数，次数用完后 UKey 将被锁定。",
            "Wrong PIN. Mind the attempts left: when none are left the token locks."};
    case UKEY_ERR_PIN_LAST_ATTEMPT:
        return (struct err_info){409, "PIN_LAST_ATTEMPT",
            "只剩最后一次 PIN 重试机会，再错一次 UKey 将被锁定。请确认 PIN 码无误后再明确确认提交。",
            "Only one PIN attempt is left; one more wrong PIN locks the token. Check the PIN, then confirm the last attempt explicitly."};
    case UKEY_ERR_PIN_BLOCKED:
        return (struct err_info){423, "PIN_BLOCKED",
            "PIN 已被锁定。请使用 PUK 解锁，或携带 UKey 到发证机构办理解锁。",
            "The PIN is blocked. Unblock it with the PUK, or take the token to its issuer."};
    case UKEY_ERR_PUK_INCORRECT:
        return (struct err_info){403, "PUK_INCORRECT",
            "PUK 解锁码错误。PUK 次数用完后只能由发证机构处理。",
            "Wrong PUK. When no PUK attempts are left, only the issuer can help."};
    case UKEY_ERR_PUK_BLOCKED:
        return (struct err_info){423, "PUK_BLOCKED",
            "PUK 已被锁定，无法自行解锁。请携带 UKey 到发证机构办理。",
            "The PUK is blocked; the token cannot be unblocked here. Take it to its issuer."};
    case UKEY_ERR_CHALLENGE_INVALID:
        return (struct err_info){400, "CHALLENGE_INVALID",
            "登录挑战值无效：必须是门户后台生成的、至少 32 字节随机数的 Base64 编码。请刷新登录页面重试。",
            "The login challenge is invalid: it must be the Base64 of at least 32 random bytes from the portal's back end. Reload the login page and retry."};
    case UKEY_ERR_CERT_NOT_FOUND:
        return (struct err_info){404, "CERT_NOT_FOUND",
            "UKey 中没有可用于登录的证书（需要具有数字签名用途的认证证书）。请联系发证机构。",
            "The token holds no certificate usable for login (an authentication certificate with digitalSignature). Contact the issuer."};
    case UKEY_ERR_PIN_REQUIRED:
        return (struct err_info){400, "PIN_REQUIRED",
            "每次登录都必须输入 PIN 码。",
            "Every login needs the PIN in that very request."};
    case UKEY_ERR_ORIGIN_REQUIRED:
        return (struct err_info){400, "ORIGIN_REQUIRED",
            "登录请求必须来自浏览器中的门户网页（缺少 Origin），签名需要绑定该网站。",
            "A login must come from a portal page in a browser (no Origin header): the signature is bound to that site."};
    case UKEY_ERR_CERT_INVALID:
        return (struct err_info){400, "CERTIFICATE_INVALID",
            "无法读取该证书：请提供 Base64 编码的 DER 证书或 PEM 格式的证书。",
            "The certificate cannot be read: send a Base64 DER or a PEM certificate."};
    case UKEY_ERR_AGENT_BUSY:
        return (struct err_info){503, "AGENT_BUSY",
            "助手正在进行其他检查，请稍后重试。",
            "The agent is busy with other checks; try again in a moment."};
    case UKEY_ERR_PIN_ENTRY_IN_WINDOW:
        return (struct err_info){403, "PIN_ENTRY_IN_AGENT_WINDOW",
            "本网站的 PIN 码只能在证书助手自己的窗口中输入，网页不能接收 PIN 码。",
            "This site's users type their PIN only in the agent's own window; the page may not send it."};
    case UKEY_ERR_CONSENT_NOT_FOUND:
        return (struct err_info){404, "CONSENT_NOT_FOUND",
            "该登录请求不存在、已经完成或已过期，请回到网站重新登录。",
            "This login request is unknown, already finished or expired: log in again from the site."};
    case UKEY_ERR_USER_CANCELLED:
        return (struct err_info){409, "USER_CANCELLED",
            "您在证书助手的窗口中取消了登录。",
            "The login was cancelled in the agent's window."};
    case UKEY_ERR_CONSENT_TIMEOUT:
        return (struct err_info){408, "CONSENT_TIMEOUT",
            "没有在规定时间内在证书助手的窗口中确认登录，请重新登录。",
            "The login was not confirmed in the agent's window in time: log in again."};
    case UKEY_ERR_MODULE_FAILED:
        return (struct err_info){503, "MODULE_FAILED",
            "UKey 厂商的驱动（PKCS#11 或 SKF）无法加载、初始化或已停止响应：请重新安装该厂商的驱动，或检查配置的路径。",
            "The token vendor's driver (PKCS#11 module or SKF library) could not be loaded or initialised, or "
            "stopped answering: reinstall the vendor's driver, or check the configured path."};
    case UKEY_ERR_PIN_PAD_TIMEOUT:
        return (struct err_info){408, "PIN_PAD_TIMEOUT",
            "没有在规定时间内在读卡器的键盘上输入 PIN 码，本次未消耗重试次数。请重新登录，并在读卡器提示后输入 PIN 码。",
            "No PIN was typed on the reader's keypad in time, so no attempt was used. Log in again and type the PIN when the reader asks for it."};
    case UKEY_ERR_PIN_PAD_CANCELLED:
        return (struct err_info){409, "PIN_PAD_CANCELLED",
            "已在读卡器的键盘上取消输入 PIN 码，本次未消耗重试次数。",
            "PIN entry was cancelled on the reader's keypad; no attempt was used."};
    case UKEY_ERR_PUK_LAST_ATTEMPT:
        return (struct err_info){409, "PUK_LAST_ATTEMPT",
            "PUK 解锁码可能只剩最后一次重试机会，再错一次 UKey 将永久锁定，只能由发证机构处理。请确认 PUK 无误后再明确确认提交。",
            "The PUK may have only one attempt left; one more wrong PUK locks the token for good, and only the issuer can "
            "help. Check the PUK, then confirm the last attempt explicitly."};
    case UKEY_ERR_PIN_TOO_SOON:
        return (struct err_info){429, "PIN_TOO_SOON",
            "刚才输入的 PIN 码（或 PUK）有误，为防止被猜测，请稍候再试（retry_after_ms 为需等待的毫秒数）。本次未消耗重试次数。",
            "The last PIN (or PUK) was wrong; to stop guessing, wait before the next try (retry_after_ms says how long). "
            "No attempt was used."};
    case UKEY_ERR_CONSENT_REPLACED:
        return (struct err_info){409, "CONSENT_REPLACED",
            "本网站又发起了新的登录请求，这个较早的请求已被取代：请在最新打开的证书助手窗口中确认登录。",
            "The site started a newer login, which replaced this older request: confirm the login in the agent's newest window."};
    case UKEY_ERR_ORIGIN_BUSY:
        return (struct err_info){429, "ORIGIN_BUSY",
            "本网站已有多个请求正在使用 UKey，请等它们完成后再试。",
            "This site already has as many requests at the token as it may; try again when they have finished."};
    case UKEY_ERR_SIGN_NOT_ALLOWED:
        return (struct err_info){403, "SIGN_NOT_ALLOWED",
            "本网站未被允许用 UKey 签名数据（这类签名不绑定网站）。需由管理员在 agent.json 的 allow_origins 中为它设置 \"legacy_sign\": true。",
            "This site may not have data signed by the token (such signatures are not bound to the site). An administrator must set \"legacy_sign\": true on its allow_origins entry in agent.json."};
    case UKEY_ERR_DATA_INVALID:
        return (struct err_info){400, "DATA_INVALID",
            "待签名数据无效：必须是 1 到 32768 字节的文本，或 encoding 为 base64 时的有效 Base64。",
            "The data to sign is invalid: it must be 1 to 32768 bytes of text, or valid Base64 when encoding is base64."};
    case UKEY_ERR_ALGORITHM_MISMATCH:
        return (struct err_info){400, "ALGORITHM_MISMATCH",
            "所请求的签名算法与证书密钥不符（SM2 为 SM3withSM2，RSA 为 SHA256withRSA，P-256 为 SHA256withECDSA，P-384 为 SHA384withECDSA）。",
            "The requested algorithm does not match the certificate's key (SM2: SM3withSM2, RSA: SHA256withRSA, P-256: SHA256withECDSA, P-384: SHA384withECDSA)."};
    case UKEY_ERR__COUNT:
        break;
    }
    return (struct err_info){500, "INTERNAL_ERROR", "未知错误。", "Unknown error."};
}

unsigned err_http_status(ukey_err e) { return err_lookup(e).status; }
const char *err_code(ukey_err e) { return err_lookup(e).code; }
const char *err_message_zh(ukey_err e) { return err_lookup(e).zh; }
const char *err_message_en(ukey_err e) { return err_lookup(e).en; }
