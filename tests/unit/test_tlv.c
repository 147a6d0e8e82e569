/* BER-TLV reading over recorded and malformed PIV card answers (security.md CARD-06). */
#include "check.h"

#include "token/tlv.h"

int main(void)
{
    /* A CHUID as cards answer it: 53 { 30 FASC-N(25), 34 GUID(16), 35 expiry(8), 3E 00, FE 00 } */
    static const unsigned char chuid[] = {
        0x53, 0x3b, 0x30, 0x19, 0xd4, 0xe7, 0x39, 0xda, 0x73, 0x9c, 0xed, 0x39, 0xce, 0x73, 0x9d, 0x83,
        0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xc8, 0x42, 0x10, 0xc3, 0xeb, 0x34, 0x10, 0x00,
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x35,
        0x08, '2', '0', '3', '0', '1', '2', '3', '1', 0x3e, 0x00, 0xfe, 0x00};
    /* 53 82 01 00 { 70 81 FA <250 bytes> 71 01 00 FE 00 }: long-form lengths */
    unsigned char cert_obj[4 + 3 + 250 + 3 + 2];
    /* Hostile answers: a 4-byte length, a length past the end, a tag that never ends. */
    static const unsigned char huge[] = {0x53, 0x84, 0xff, 0xff, 0xff, 0xff, 0x70};
    static const unsigned char past[] = {0x53, 0x82, 0x10, 0x00, 0x70, 0x01};
    static const unsigned char endless_tag[] = {0x5f, 0xc1, 0x81, 0x82};
    static const unsigned char empty_len[] = {0x53};
    struct tlv t, inner;
    const unsigned char *p;
    size_t n = 0;

    CHECK(tlv_find(chuid, sizeof chuid, 0x53, &t) == 0 && t.len == 0x3b);
    CHECK(tlv_find(t.value, t.len, 0x34, &inner) == 0 && inner.len == 16 && inner.value[0] == 0x00 &&
          inner.value[15] == 0xff);
    CHECK(tlv_find(t.value, t.len, 0x30, &inner) == 0 && inner.len == 25);
    CHECK(tlv_find(t.value, t.len, 0x99, &inner) == -1);

    cert_obj[n++] = 0x53, cert_obj[n++] = 0x82, cert_obj[n++] = 0x01, cert_obj[n++] = 0x02;
    cert_obj[n++] = 0x70, cert_obj[n++] = 0x81, cert_obj[n++] = 0xfa;
    for (int i = 0; i < 250; i++)
        cert_obj[n++] = (unsigned char)i;
    cert_obj[n++] = 0x71, cert_obj[n++] = 0x01, cert_obj[n++] = 0x00;
    cert_obj[n++] = 0xfe, cert_obj[n++] = 0x00;
    CHECK(n == sizeof cert_obj);
    CHECK(tlv_find(cert_obj, n, 0x53, &t) == 0 && t.len == 0x102);
    CHECK(tlv_find(t.value, t.len, 0x70, &inner) == 0 && inner.len == 250 && inner.value[249] == 249);
    CHECK(tlv_find(t.value, t.len, 0x71, &inner) == 0 && inner.len == 1);
    CHECK(tlv_find(t.value, t.len, 0xfe, &inner) == 0 && inner.len == 0);
    /* Truncated by one byte: the outer object no longer fits. */
    CHECK(tlv_find(cert_obj, n - 1, 0x53, &t) == -1);

    /* Multi-byte tags: 5F C1 02 */
    {
        static const unsigned char tag3[] = {0x5f, 0xc1, 0x02, 0x01, 0xaa};
        CHECK(tlv_find(tag3, sizeof tag3, 0x5fc102, &t) == 0 && t.len == 1 && t.value[0] == 0xaa);
    }
    p = huge;
    CHECK(tlv_next(&p, huge + sizeof huge, &t) == -1 && p == huge);
    p = past;
    CHECK(tlv_next(&p, past + sizeof past, &t) == -1);
    p = endless_tag;
    CHECK(tlv_next(&p, endless_tag + sizeof endless_tag, &t) == -1);
    p = empty_len;
    CHECK(tlv_next(&p, empty_len + 1, &t) == -1);
    CHECK(tlv_find(chuid, 0, 0x53, &t) == -1);
    return check_done();
}
