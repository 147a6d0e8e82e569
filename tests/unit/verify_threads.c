/*
 * test_verify_threads: one libukeyverify verifier shared by 8 threads, each
 * verifying docs/PROTOCOL.md's example tokens many times, half of them for a
 * wrong origin: every answer must be right (the library keeps no global
 * state). Runs under ASan in the sanitizer build too.
 */
#include "check.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <ukey/verify.h>

#define THREADS 8
#define ROUNDS 40

static struct ukey_verifier *verifier;
static char *tokens[8];
static size_t n_tokens;
static const char *challenge;
static int wrong[THREADS];

static void *worker(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < n_tokens; i++) {
            int bad = (round + (int)i + (int)id) % 2;
            struct ukey_verify_info info;
            ukey_verify_result r = ukey_verify_token(verifier, tokens[i], strlen(tokens[i]),
                                                     bad ? "https://phish.example.gov.cn"
                                                         : "https://portal.example.gov.cn",
                                                     challenge, &info);
            if (r != (bad ? UKEY_VERIFY_SIGNATURE : UKEY_VERIFY_OK))
                wrong[id]++;
        }
    }
    return NULL;
}

int main(void)
{
    const char *src = getenv("UKEY_SOURCE_DIR");
    char path[4096], *doc, *begin, *end;
    FILE *f;
    long len;
    json_t *vectors, *tok;
    const char *alg;
    pthread_t threads[THREADS];

    snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", src ? src : ".");
    f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return check_done();
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    doc = calloc(1, (size_t)len + 1);
    CHECK(fread(doc, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    begin = strstr(doc, "<!-- vectors:begin -->");
    begin = begin ? strstr(begin, "```json\n") : NULL;
    end = begin ? strstr(begin + 8, "```") : NULL;
    CHECK(begin && end);
    if (!begin || !end)
        return check_done();
    vectors = json_loadb(begin + 8, (size_t)(end - begin - 8), 0, NULL);
    CHECK(vectors != NULL);
    challenge = json_string_value(json_object_get(vectors, "challenge"));
    json_object_foreach(json_object_get(vectors, "tokens"), alg, tok)
        if (n_tokens < 8)
            tokens[n_tokens++] = json_dumps(tok, JSON_COMPACT);
    CHECK(n_tokens == 5 && challenge); /* ES256, ES384, RS256, PS256, SM2-SM3 */
    if (n_tokens != 5 || !challenge)
        return check_done();

    CHECK(ukey_verifier_create(&verifier) == UKEY_VERIFY_OK);
    snprintf(path, sizeof path, "%s/tests/data/protocol/ca.pem", src ? src : ".");
    CHECK(ukey_verifier_add_trust_anchors(verifier, path) == UKEY_VERIFY_OK);
    snprintf(path, sizeof path, "%s/tests/data/protocol/sm2-ca.pem", src ? src : ".");
    CHECK(ukey_verifier_add_trust_anchors(verifier, path) == UKEY_VERIFY_OK);
    ukey_verifier_set_time(verifier, 1800000000);
    for (intptr_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)i) == 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(wrong[i] == 0);
    }
    /* Bad arguments are answered, not crashed on. */
    CHECK(ukey_verify_token(NULL, tokens[0], 1, "x", "y", NULL) == UKEY_VERIFY_BAD_ARGUMENT);
    CHECK(ukey_verify_token(verifier, tokens[0], strlen(tokens[0]), "", challenge, NULL) == UKEY_VERIFY_BAD_ARGUMENT);
    CHECK(strcmp(ukey_verify_name(UKEY_VERIFY_SIGNATURE), "SIGNATURE_INVALID") == 0);
    for (size_t i = 0; i < n_tokens; i++)
        free(tokens[i]);
    ukey_verifier_free(verifier);
    json_decref(vectors);
    free(doc);
    return check_done();
}
