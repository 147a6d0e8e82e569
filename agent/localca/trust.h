/*
 * Trust installation for the agent's local CA: the user's NSS databases
 * (Chromium, every Firefox profile) and, as root, the system store.
 */
#ifndef UKEY_LOCALCA_TRUST_H
#define UKEY_LOCALCA_TRUST_H

#include <jansson.h>
#include <stdio.h>

int trust_install(const char *state_dir, int with_system, FILE *out);
int trust_uninstall(const char *state_dir, int with_system, FILE *out);
int trust_status(const char *state_dir, int json, FILE *out);
int trust_refresh(const char *state_dir);
json_t *trust_stores_json(const char *state_dir);

#endif
