/*
 * ukey-agent: argument parsing only. Each command lives in its module:
 * serve in server/serve.c, trust in localca/trust.c.
 */
#include "diag/checks.h"
#include "localca/localca.h"
#include "localca/trust.h"
#include "profile/profile.h"
#include "server/serve.h"
#include "server/stop.h"
#include "token/pkcs11.h"
#include "token/skf.h"
#include "token/tokens.h"
#include "util/config.h"
#include "util/log.h"
#include "util/process.h"
#include "util/rng.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *to)
{
    fprintf(to,
            "ukey-agent %s - USB token (UKey) login for web portals, no plug-in\n"
            "\n"
            "Usage:\n"
            "  ukey-agent serve [--port N] [--probe-port N] [--state-dir DIR] [--config FILE]\n"
            "                   [--allow-origin ORIGIN]... [--ca-file PEM] [--ca-dir DIR]\n"
            "                   [--webroot DIR] [--pkcs11-module SO]... [--skf-module SO]...\n"
            "                   [--profile FILE]... [--log-level error|warn|info|debug] [--no-reminders]\n"
            "  ukey-agent tokens [--json] [--pkcs11-module SO]... [--skf-module SO]... [--profile FILE]...\n"
            "  ukey-agent doctor [--json] [--lang zh-CN|en] [--mask-names] [--pkcs11-module SO]...\n"
            "                    [--skf-module SO]... [--profile FILE]...\n"
            "  ukey-agent profile check FILE...\n"
            "  ukey-agent trust install|uninstall|status [--json] [--no-system]\n"
            "                   [--state-dir DIR] [--config FILE]\n"
            "  ukey-agent stop  (Windows: stops this user's running agent)\n"
            "  ukey-agent --version\n"
            "\n"
            "ORIGIN is an exact origin (https://portal.example.gov.cn) or a pattern\n"
            "(https://*.example.gov.cn). SO is a token vendor's PKCS#11 module or SKF\n"
            "(GM/T 0016) library (repeatable; also \"pkcs11_modules\" and \"skf_modules\"\n"
            "in the config). FILE is a CA's deployment profile (docs/PROFILES.md;\n"
            "repeatable; also \"profiles\" in the config). --no-reminders: no desktop\n"
            "notifications of expiring certificates (also \"reminders\": false).\n"
            "The config file defaults to $XDG_CONFIG_HOME/ukey-agent/agent.json\n"
            "(%%APPDATA%%\\ukey-agent\\agent.json on Windows). See docs/ for the API.\n",
            UKEY_VERSION);
}

enum { OPT_PORT = 1000, OPT_PROBE_PORT, OPT_STATE_DIR, OPT_CONFIG, OPT_ALLOW_ORIGIN, OPT_CA_FILE, OPT_CA_DIR, OPT_WEBROOT,
       OPT_LOG_LEVEL, OPT_JSON, OPT_NO_SYSTEM, OPT_LANG, OPT_MASK_NAMES, OPT_PKCS11_MODULE,
       OPT_SKF_MODULE, OPT_PROFILE, OPT_NO_REMINDERS };

struct cli {
    const char *config_path;
    const char *lang;
    int json, no_system, mask_names;
};

/* Parses the options shared by every command into cfg (flags win over the
 * config file, which is loaded first). Returns 0, or 2 for a usage error. */
static int parse_options(int argc, char **argv, struct agent_config *cfg, struct cli *cli)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"probe-port", required_argument, NULL, OPT_PROBE_PORT},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"ca-dir", required_argument, NULL, OPT_CA_DIR},
        {"mask-names", no_argument, NULL, OPT_MASK_NAMES},
        {"webroot", required_argument, NULL, OPT_WEBROOT},
        {"pkcs11-module", required_argument, NULL, OPT_PKCS11_MODULE},
        {"skf-module", required_argument, NULL, OPT_SKF_MODULE},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"json", no_argument, NULL, OPT_JSON},
        {"no-system", no_argument, NULL, OPT_NO_SYSTEM},
        {"lang", required_argument, NULL, OPT_LANG},
        {"no-reminders", no_argument, NULL, OPT_NO_REMINDERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[512];
    int c;

    /* Pass 1: find --config, so that the file loads before the other flags. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        if (c == OPT_CONFIG)
            cli->config_path = optarg;
    if (config_load(cfg, cli->config_path, err, sizeof err) != 0) {
        fprintf(stderr, "ukey-agent: %s\n", err);
        return 2;
    }
    opterr = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        unsigned long v;
        switch (c) {
        case OPT_PORT:
        case OPT_PROBE_PORT:
            v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v > 65535) {
                fprintf(stderr, "ukey-agent: --%s: \"%s\" is not a port number (0-65535)\n",
                        c == OPT_PORT ? "port" : "probe-port", optarg);
                return 2;
            }
            *(c == OPT_PORT ? &cfg->port : &cfg->probe_port) = (unsigned)v;
            break;
        case OPT_STATE_DIR:
            if (config_set_string(&cfg->state_dir, optarg))
                return 2;
            break;
        case OPT_CONFIG:
            break;
        case OPT_ALLOW_ORIGIN:
            if (config_add_origin(cfg, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "ukey-agent: --allow-origin: %s\n", err);
                return 2;
            }
            break;
        case OPT_CA_FILE:
            if (config_set_string(&cfg->ca_file, optarg))
                return 2;
            break;
        case OPT_CA_DIR:
            if (config_set_string(&cfg->ca_dir, optarg))
                return 2;
            break;
        case OPT_PKCS11_MODULE:
            if (config_add_pkcs11_module(cfg, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "ukey-agent: --pkcs11-module: %s\n", err);
                return 2;
            }
            break;
        case OPT_SKF_MODULE:
            if (config_add_skf_module(cfg, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "ukey-agent: --skf-module: %s\n", err);
                return 2;
            }
            break;
        case OPT_PROFILE:
            if (config_add_profile(cfg, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "ukey-agent: --profile: %s\n", err);
                return 2;
            }
            break;
        case OPT_MASK_NAMES:
            cli->mask_names = 1;
            break;
        case OPT_WEBROOT:
            if (config_set_string(&cfg->webroot, optarg))
                return 2;
            break;
        case OPT_LOG_LEVEL:
            if ((cfg->log_level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "ukey-agent: --log-level: use error, warn, info or debug\n");
                return 2;
            }
            break;
        case OPT_JSON:
            cli->json = 1;
            break;
        case OPT_NO_SYSTEM:
            cli->no_system = 1;
            break;
        case OPT_LANG:
            cli->lang = optarg;
            break;
        case OPT_NO_REMINDERS:
            cfg->reminders = 0;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ukey-agent: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    log_set_level((enum log_level)cfg->log_level);
    return 0;
}

static int trust_main(const char *action, struct agent_config *cfg, const struct cli *cli)
{
    enum localca_result res;
    char err[512];
    int with_system = !cli->no_system && process_is_admin();

    if (rng_init() != 0 || config_resolve_state_dir(cfg, err, sizeof err) != 0 ||
        localca_ensure(cfg->state_dir, time(NULL), &res, err, sizeof err) != 0) {
        fprintf(stderr, "ukey-agent: %s\n", err);
        return 1;
    }
    if (strcmp(action, "install") == 0)
        return trust_install(cfg->state_dir, with_system, stdout) == 0 ? 0 : 1;
    if (strcmp(action, "uninstall") == 0)
        return trust_uninstall(cfg->state_dir, with_system, stdout) == 0 ? 0 : 1;
    if (strcmp(action, "status") == 0) {
        int rc = trust_status(cfg->state_dir, cli->json, stdout);
        return rc < 0 ? 2 : rc;
    }
    fprintf(stderr, "ukey-agent: trust: unknown action \"%s\" (install, uninstall, status)\n", action);
    return 2;
}

/* `ukey-agent tokens`: what GET /api/v1/tokens says, for people or scripts. */
/* "BLOCKED", "3 tries left" or "tries left not told" for a token's "pin"
 * or "puk" (PKCS#11 tokens say only "final try"). */
static const char *counter_text(const json_t *counter, char *buf, size_t cap)
{
    const json_t *left = json_object_get(counter, "retries_left");
    if (json_is_true(json_object_get(counter, "blocked")))
        snprintf(buf, cap, "BLOCKED");
    else if (json_is_integer(left))
        snprintf(buf, cap, "%lld tries left", (long long)json_integer_value(left));
    else
        snprintf(buf, cap, "tries left not told");
    return buf;
}

static int tokens_main(const struct cli *cli)
{
    json_t *list = NULL, *r, *t, *c;
    size_t i, j;
    ukey_err e = tokens_list(&list);

    if (cli->json) {
        if (e != UKEY_OK) {
            json_decref(list);
            list = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", err_code(e), "zh-CN",
                             err_message_zh(e), "en", err_message_en(e));
        }
        json_dumpf(list, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (e != UKEY_OK) {
        fprintf(stderr, "ukey-agent: %s: %s\n%s\n", err_code(e), err_message_zh(e), err_message_en(e));
    } else {
        json_array_foreach(json_object_get(list, "readers"), i, r) {
            json_t *err = json_object_get(r, "error");
            printf("reader \"%s\": %s%s%s\n", json_string_value(json_object_get(r, "name")),
                   json_string_value(json_object_get(r, "state")), err ? ", " : "",
                   err ? json_string_value(json_object_get(err, "code")) : "");
        }
        if (json_array_size(json_object_get(list, "readers")) == 0)
            printf("no card reader found\n");
        json_array_foreach(json_object_get(list, "tokens"), i, t) {
            char pin[32], puk[32];
            printf("token %s (%s) in \"%s\": PIN %s, PUK %s\n", json_string_value(json_object_get(t, "id")),
                   json_string_value(json_object_get(t, "type")), json_string_value(json_object_get(t, "reader")),
                   counter_text(json_object_get(t, "pin"), pin, sizeof pin),
                   counter_text(json_object_get(t, "puk"), puk, sizeof puk));
            json_array_foreach(json_object_get(t, "certificates"), j, c)
                printf("  %s %s: %s (valid until %s)\n", json_string_value(json_object_get(c, "id")),
                       json_string_value(json_object_get(c, "slot")),
                       json_string_value(json_object_get(c, "subject")),
                       json_string_value(json_object_get(c, "not_after")));
        }
    }
    json_decref(list);
    return e == UKEY_OK ? 0 : 1;
}

/* `ukey-agent doctor`: the diagnostic report in a terminal (colour on a
 * TTY), or --json. Exit 0 when nothing failed, 1 otherwise. */
static int doctor_main(struct agent_config *cfg, const struct cli *cli)
{
    static const char *const marks[] = {"FAIL", "WARN", " OK ", "SKIP"};
    static const char *const colours[] = {"\033[31m", "\033[33m", "\033[32m", "\033[90m"};
    struct diag_options opt = {.lang = diag_lang_from(cli->lang ? cli->lang : process_lang_zh() ? "zh" : "en")};
    int tty = isatty(STDOUT_FILENO), failed;
    char err[512];
    json_t *report, *c;
    size_t i;

    if (rng_init() != 0 || config_resolve_state_dir(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ukey-agent: %s\n", err);
        return 2;
    }
    diag_options_from_config(&opt, cfg);
    opt.mask_names = cli->mask_names;
    opt.owner = 1;
    if (!(report = diag_run(&opt)))
        return 2;
    failed = json_integer_value(json_object_get(json_object_get(report, "summary"), "fail")) > 0;
    if (cli->json) {
        json_dumpf(report, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printf("ukey-agent %s doctor\n\n", UKEY_VERSION);
        json_array_foreach(json_object_get(report, "checks"), i, c) {
            const char *st = json_string_value(json_object_get(c, "status"));
            int k = strcmp(st, "fail") == 0 ? 0 : strcmp(st, "warn") == 0 ? 1 : strcmp(st, "pass") == 0 ? 2 : 3;
            const char *fix = json_string_value(json_object_get(c, "fix"));
            printf("%s[%s]%s %s: %s\n", tty ? colours[k] : "", marks[k], tty ? "\033[0m" : "",
                   json_string_value(json_object_get(c, "title")), json_string_value(json_object_get(c, "detail")));
            if (fix)
                printf("       -> %s\n", fix);
        }
    }
    json_decref(report);
    return failed ? 1 : 0;
}

/* `ukey-agent profile check FILE...`: each file as profiles_load would read
 * it; 0 when all are valid, 2 with a message per bad one. */
static int profile_main(int argc, char **argv)
{
    char err[1024];
    int rc = 0;
    if (argc < 2 || strcmp(argv[0], "check") != 0) {
        fprintf(stderr, "ukey-agent: profile: say \"check FILE...\"\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (profile_check_file(argv[i], err, sizeof err) != 0) {
            fprintf(stderr, "ukey-agent: %s\n", err);
            rc = 2;
        } else {
            printf("%s: ok\n", argv[i]);
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct agent_config cfg;
    struct cli cli = {0};
    const char *command, *action = NULL;
    int rc;

    process_init(&argc, &argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    command = argv[1];
    if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
        printf("ukey-agent %s\n", UKEY_VERSION);
        return 0;
    }
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        usage(stdout);
        return 0;
    }
    config_defaults(&cfg);
    if (strcmp(command, "serve") == 0 || strcmp(command, "tokens") == 0 || strcmp(command, "doctor") == 0) {
        char err[1024];
        rc = parse_options(argc - 1, argv + 1, &cfg, &cli);
        /* An invalid profile stops these commands like an invalid agent.json. */
        if (rc == 0 && profiles_load(&cfg, err, sizeof err) != 0) {
            fprintf(stderr, "ukey-agent: %s\n", err);
            rc = 2;
        }
        if (rc == 0) {
            /* Commands that reach tokens: the vendors' modules too. */
            p11_load(cfg.pkcs11_modules, cfg.n_pkcs11_modules);
            skf_load(cfg.skf_modules, cfg.n_skf_modules);
            rc = command[0] == 's' ? serve_main(&cfg) : command[0] == 't' ? tokens_main(&cli) : doctor_main(&cfg, &cli);
            skf_unload();
            p11_unload();
        }
        profiles_free();
    } else if (strcmp(command, "stop") == 0) {
        char err[256];
        if ((rc = stop_request_running(err, sizeof err) != 0))
            fprintf(stderr, "ukey-agent: stop: %s\n", err);
    } else if (strcmp(command, "profile") == 0) {
        rc = profile_main(argc - 2, argv + 2);
    } else if (strcmp(command, "trust") == 0) {
        if (argc < 3) {
            fprintf(stderr, "ukey-agent: trust: say install, uninstall or status\n");
            rc = 2;
        } else {
            action = argv[2];
            rc = parse_options(argc - 2, argv + 2, &cfg, &cli);
            if (rc == 0)
                rc = trust_main(action, &cfg, &cli);
        }
    } else {
        fprintf(stderr, "ukey-agent: unknown command \"%s\"\n\n", command);
        usage(stderr);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
