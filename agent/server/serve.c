/*
 * `ukey-agent serve`: sets up the identity, the HTTP engine and the TLS
 * front, then runs the event loop until asked to stop (stop.h). Once an hour it
 * checks whether the TLS certificate is due for renewal.
 */
#include "server/serve.h"

#include "api/api.h"
#include "api/events.h"
#include "localca/localca.h"
#include "localca/trust.h"
#include "notify/reminders.h"
#include "server/guard.h"
#include "server/http.h"
#include "server/probe.h"
#include "server/stop.h"
#include "server/tls.h"
#include "token/tokens.h"
#include "util/log.h"
#include "util/net.h"
#include "util/rng.h"
#include "util/secret.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define RENEWAL_CHECK_S 3600
#define TICK_S RENEWAL_CHECK_S

static volatile int stop_requested;

struct serve_state {
    struct agent_config *cfg;
    struct tls_front *front;
    char cert_path[4096], key_path[4096];
};

/* Makes a new CA + leaf when the leaf is near its end, switches new
 * connections to it, and re-installs trust where it was installed before. */
static void renew_if_due(struct serve_state *st)
{
    enum localca_result res;
    char err[512];
    if (localca_ensure(st->cfg->state_dir, time(NULL), &res, err, sizeof err) != 0) {
        log_error("TLS certificate renewal failed: %s", err);
        return;
    }
    if (res == LOCALCA_REUSED)
        return;
    if (tls_front_reload(st->front, st->cert_path, st->key_path, err, sizeof err) != 0) {
        log_error("cannot load the renewed TLS certificate: %s", err);
        return;
    }
    log_info("TLS certificate renewed");
    if (trust_refresh(st->cfg->state_dir) != 0)
        log_warn("the renewed CA could not be installed in every trust store; run \"ukey-agent trust install\"");
}

/* Runs every TICK_S seconds in the event loop: the only timer of an idle agent. */
static void tick(void *arg) { renew_if_due(arg); }

int serve_main(struct agent_config *cfg)
{
    struct serve_state st = {.cfg = cfg};
    struct agent_ctx agent = {.cfg = cfg, .started = time(NULL)};
    struct guard_policy policy;
    struct http_server *http = NULL;
    struct probe_server *probe = NULL;
    struct tls_front_options opt;
    enum localca_result res;
    net_socket wake = NET_INVALID;
    char err[512];
    int rc = 1;

    secret_harden_process();
    if (net_init(err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }
    if (rng_init() != 0) {
        log_error("cannot seed the random generator");
        return 1;
    }
    if (config_resolve_state_dir(cfg, err, sizeof err) != 0 ||
        localca_ensure(cfg->state_dir, time(NULL), &res, err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }
    if (res == LOCALCA_CREATED)
        log_info("created a new local CA and TLS certificate in %s; run \"ukey-agent trust install\" "
                 "so browsers trust it", cfg->state_dir);
    else if (res == LOCALCA_RENEWED && trust_refresh(cfg->state_dir) != 0)
        log_warn("the renewed CA could not be installed in every trust store; run \"ukey-agent trust install\"");
    snprintf(st.cert_path, sizeof st.cert_path, "%s/%s", cfg->state_dir, LOCALCA_CERT_FILE);
    snprintf(st.key_path, sizeof st.key_path, "%s/%s", cfg->state_dir, LOCALCA_KEY_FILE);

    memset(&policy, 0, sizeof policy);
    if (!(http = http_create(&agent, &policy, err, sizeof err))) {
        log_error("%s", err);
        goto out;
    }
    opt = (struct tls_front_options){
        .port = cfg->port,
        .cert_file = st.cert_path,
        .key_file = st.key_path,
        .max_connections = cfg->max_connections,
        .handshake_timeout_s = cfg->handshake_timeout_s,
        .idle_timeout_s = cfg->idle_timeout_s,
    };
    if (!(st.front = tls_front_create(&opt, http, err, sizeof err))) {
        log_error("cannot listen: %s", err);
        goto out;
    }
    agent.port = tls_front_port(st.front);
    /* No connection is accepted before tls_front_run, so filling the policy
     * now (it needs the bound port) is safe. */
    guard_policy_init(&policy, agent.port, cfg->allow_origins, cfg->n_allow_origins);

    if (stop_watch_start(&stop_requested, &wake, err, sizeof err) != 0) {
        log_error("%s", err);
        goto out;
    }

    /* The probe is a convenience for the SDK: the agent runs without it. */
    if ((probe = probe_start(cfg->probe_port, agent.port, cfg->state_dir, cfg->allow_origins, cfg->n_allow_origins,
                             err, sizeof err)))
        log_info("probe listening on http://127.0.0.1:%u/probe", probe_port(probe));
    else
        log_warn("no probe: %s", err);
    log_info("ukey-agent %s listening on https://127.0.0.1:%u (state %s, %zu allowed origin(s))",
             UKEY_VERSION, agent.port, cfg->state_dir, cfg->n_allow_origins);
    tokens_set_pin_delay(cfg->pin_retry_delay_ms);
    /* Before the monitors, so that no insertion goes unseen; its first
     * check covers the tokens already present. */
    if (cfg->reminders)
        reminders_start(&(struct reminders_options){.state_dir = cfg->state_dir});
    if (events_start() != 0)
        log_warn("cannot start the PC/SC monitor: no token events");
    rc = tls_front_run(st.front, &stop_requested, wake, TICK_S, tick, &st) ? 1 : 0;
    log_info("shutting down");
    /* Parked event streams must be resumed before the HTTP engine stops;
     * the reminders stop first, as they read tokens. */
    reminders_stop();
    events_shutdown();
out:
    probe_stop(probe);
    tls_front_destroy(st.front);
    http_destroy(http);
    tokens_forget();
    consent_forget();
    rng_free();
    if (wake != NET_INVALID)
        stop_watch_end();
    return rc;
}
