/*
 * ukey-verify: verifies a login token from ukey-agent on the portal's side.
 *   ukey-verify --token FILE --challenge B64 --origin URL --ca-file PEM
 *               [--crl-check] [--crl FILE]... [--time UNIX]
 *   ukey-verify --signature FILE --cert FILE --data FILE --ca-file PEM
 *               [--crl-check] [--crl FILE]... [--time UNIX]
 * The second form checks a raw signature (its bytes, DER for SM2/ECDSA)
 * over the data with the certificate (DER or Base64), as old plug-ins'
 * back ends do (ukey_verify_signature).
 * Exit 0 and print the subject and serial for a valid token; exit 1 with
 * the failed check's name and detail otherwise; 2 for a usage error.
 */
#include <ukey/verify.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 1024 * 1024 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The second form: exit 0/1/2 as the first. */
static int verify_signature(struct ukey_verifier *v, int anchors, const char *sig_path, const char *cert_path,
                            const char *data_path)
{
    const char *paths[3] = {sig_path, cert_path, data_path}, *names[3] = {"--signature", "--cert", "--data"};
    char *buf[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    struct ukey_verify_info info;
    ukey_verify_result r = UKEY_VERIFY_BAD_ARGUMENT;
    int rc = 2;
    if (!sig_path || !cert_path || !data_path || !anchors) {
        fprintf(stderr, "ukey-verify: --signature, --cert, --data and --ca-file are required together\n");
        goto out;
    }
    for (int i = 0; i < 3; i++)
        if (!(buf[i] = read_file(paths[i], &len[i]))) {
            fprintf(stderr, "ukey-verify: %s %s: cannot read the file\n", names[i], paths[i]);
            goto out;
        }
    r = ukey_verify_signature(v, buf[1], len[1], (unsigned char *)buf[2], len[2], (unsigned char *)buf[0], len[0],
                              &info);
    if (r == UKEY_VERIFY_OK)
        printf("%s\n%s\n%s\n", info.subject, info.serial, info.algorithm);
    else
        fprintf(stderr, "ukey-verify: %s: %s\n", ukey_verify_name(r), info.detail);
    rc = r == UKEY_VERIFY_OK ? 0 : 1;
out:
    for (int i = 0; i < 3; i++)
        free(buf[i]);
    ukey_verifier_free(v);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"token", required_argument, NULL, 't'},     {"challenge", required_argument, NULL, 'c'},
        {"origin", required_argument, NULL, 'o'},    {"ca-file", required_argument, NULL, 'a'},
        {"crl-check", no_argument, NULL, 'r'},       {"crl", required_argument, NULL, 'l'},
        {"time", required_argument, NULL, 'T'},      {"help", no_argument, NULL, 'h'},
        {"signature", required_argument, NULL, 's'}, {"cert", required_argument, NULL, 'C'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *sig_path = NULL, *cert_path = NULL, *data_path = NULL;
    const char *token_path = NULL, *challenge = NULL, *origin = NULL;
    struct ukey_verifier *v;
    struct ukey_verify_info info;
    ukey_verify_result r;
    int c, anchors = 0;
    size_t len;
    char *token;

    if (ukey_verifier_create(&v) != UKEY_VERIFY_OK)
        return 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': token_path = optarg; break;
        case 'c': challenge = optarg; break;
        case 'o': origin = optarg; break;
        case 's': sig_path = optarg; break;
        case 'C': cert_path = optarg; break;
        case 'd': data_path = optarg; break;
        case 'a':
            if (ukey_verifier_add_trust_anchors(v, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "ukey-verify: --ca-file %s: not a readable PEM certificate file\n", optarg);
                return 2;
            }
            anchors++;
            break;
        case 'r': ukey_verifier_set_crl_fetch(v, 1); break;
        case 'l':
            if (ukey_verifier_add_crl(v, optarg) != UKEY_VERIFY_OK) {
                fprintf(stderr, "ukey-verify: --crl %s: not a readable CRL\n", optarg);
                return 2;
            }
            break;
        case 'T': ukey_verifier_set_time(v, (time_t)strtoll(optarg, NULL, 10)); break;
        default:
            fprintf(stderr, "usage: ukey-verify --token FILE --challenge B64 --origin URL --ca-file PEM "
                            "[--crl-check] [--crl FILE]... [--time UNIX]\n"
                            "       ukey-verify --signature FILE --cert FILE --data FILE --ca-file PEM [...]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (sig_path || cert_path || data_path)
        return verify_signature(v, anchors, sig_path, cert_path, data_path);
    if (!token_path || !challenge || !origin || !anchors) {
        fprintf(stderr, "ukey-verify: --token, --challenge, --origin and --ca-file are required\n");
        return 2;
    }
    if (!(token = read_file(token_path, &len))) {
        fprintf(stderr, "ukey-verify: --token %s: cannot read the file\n", token_path);
        return 2;
    }
    r = ukey_verify_token(v, token, len, origin, challenge, &info);
    if (r == UKEY_VERIFY_OK)
        printf("%s\n%s\n", info.subject, info.serial);
    else
        fprintf(stderr, "ukey-verify: %s: %s\n", ukey_verify_name(r), info.detail);
    free(token);
    ukey_verifier_free(v);
    return r == UKEY_VERIFY_OK ? 0 : 1;
}
