/*
 * host_client.c - a host application for `streamfill serve`, written from plugins/PROTOCOL.md alone.
 *
 * It is both an example of a C peer and an acceptance test of the specification:
 *   1. hello handshake (section 8, 6.1, 12.1): checks version, role, limits, encodings;
 *   2. N synthetic RGB24 frames (gradient background + solid red square) with a u8 mask (255 over the
 *      square), kept `window` at a time in flight on a DEALER (6.1), results matched by `req` and checked
 *      for order, echoed fields, payload size, a filled hole and byte-identical pixels outside the grown hole;
 *   3. deliberately malformed requests, each checked for the error `code` and echoes of section 7;
 *   4. `bye` -> `bye` (6.1).
 * Prints one line per check and a summary; exit status 0 only when every check passed
 * (1: a check failed, 2: bad usage, 3: a ZeroMQ call or timeout broke the run).
 *
 * Usage: host_client [-e ENDPOINT] [-n FRAMES] [-W WIDTH] [-H HEIGHT] [-w WINDOW] [-t TIMEOUT_MS] [-q] [-s]
 * Build: make  (needs libzmq: Debian/Ubuntu `apt-get install libzmq3-dev`)
 */
#include <zmq.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ checks and reporting */

static int g_pass = 0, g_fail = 0, g_warn = 0, g_quiet = 0, g_strict = 0;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    if (ok)
        g_pass++;
    else
        g_fail++;
    if (ok && g_quiet)
        return;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* A spec rule the server is known not to follow (see plugins/c/README.md): a failure only with -s. */
static void soft_check(int ok, const char *fmt, ...)
{
    va_list ap;
    char buf[512];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (ok || g_strict) {
        check(ok, "%s", buf);
        return;
    }
    g_warn++;
    printf("warn %s (known server deviation; -s makes it a failure)\n", buf);
    fflush(stdout);
}

static void info(const char *fmt, ...)
{
    va_list ap;
    if (g_quiet)
        return;
    printf("info ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void die(const char *what)
{
    fprintf(stderr, "host_client: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(3);
}

/* ------------------------------------------------------------------ a small JSON reader
 * Enough for reply headers: a top-level object whose members are scanned into (key, value span, kind).
 * Nested arrays/objects are validated and kept as raw spans. Strings are decoded on demand. */

enum jkind { J_STRING, J_INT, J_REAL, J_TRUE, J_FALSE, J_NULL, J_ARRAY, J_OBJECT };

typedef struct {
    char key[64];
    enum jkind kind;
    const char *val; /* raw text of the value (strings: including the quotes) */
    size_t len;
} jmember;

typedef struct {
    jmember m[64];
    int n;
} jobject;

typedef struct {
    const char *p, *end;
    int depth;
} jcur;

static void jws(jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int jskip_value(jcur *c, enum jkind *kind);

static int jskip_string(jcur *c)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 0;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            ch = (unsigned char)*c->p++;
            if (ch == 'u') {
                for (int i = 0; i < 4; i++, c->p++)
                    if (c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p))
                        return -1;
            } else if (!strchr("\"\\/bfnrt", ch)) {
                return -1;
            }
        }
    }
    return -1;
}

static int jskip_number(jcur *c, enum jkind *kind)
{
    const char *s = c->p;
    int real = 0;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    if (*c->p == '0')
        c->p++;
    else
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    if (c->p < c->end && *c->p == '.') {
        real = 1;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        real = 1;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    *kind = real ? J_REAL : J_INT;
    return c->p > s ? 0 : -1;
}

static int jskip_literal(jcur *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

static int jskip_value(jcur *c, enum jkind *kind)
{
    jws(c);
    if (c->p >= c->end)
        return -1;
    switch (*c->p) {
    case '"':
        *kind = J_STRING;
        return jskip_string(c);
    case 't':
        *kind = J_TRUE;
        return jskip_literal(c, "true");
    case 'f':
        *kind = J_FALSE;
        return jskip_literal(c, "false");
    case 'n':
        *kind = J_NULL;
        return jskip_literal(c, "null");
    case '[':
    case '{': {
        char close = *c->p == '[' ? ']' : '}';
        int is_obj = close == '}';
        enum jkind k;
        *kind = is_obj ? J_OBJECT : J_ARRAY;
        if (++c->depth > 32)
            return -1;
        c->p++;
        jws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            c->depth--;
            return 0;
        }
        for (;;) {
            if (is_obj) {
                jws(c);
                if (jskip_string(c) < 0)
                    return -1;
                jws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return -1;
            }
            if (jskip_value(c, &k) < 0)
                return -1;
            jws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                c->depth--;
                *kind = is_obj ? J_OBJECT : J_ARRAY;
                return 0;
            }
            return -1;
        }
    }
    default:
        return jskip_number(c, kind);
    }
}

/* Decode a JSON string value (with quotes) into buf as UTF-8; returns 0, or -1 when it does not fit. */
static int jdecode_string(const char *val, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    const char *p = val + 1, *end = val + len - 1;
    while (p < end) {
        unsigned long cp;
        if (*p != '\\') {
            if (o + 1 >= cap)
                return -1;
            buf[o++] = *p++;
            continue;
        }
        p++;
        switch (*p++) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            cp = strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned long lo = strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            break;
        default: cp = (unsigned char)p[-1]; break; /* \" \\ \/ */
        }
        if (o + 5 >= cap)
            return -1;
        if (cp < 0x80) {
            buf[o++] = (char)cp;
        } else if (cp < 0x800) {
            buf[o++] = (char)(0xC0 | (cp >> 6));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[o++] = (char)(0xE0 | (cp >> 12));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[o++] = (char)(0xF0 | (cp >> 18));
            buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    buf[o] = 0;
    return 0;
}

/* Parse a header: a JSON object, nothing after it but whitespace. Returns 0 or -1. */
static int jparse(const char *s, size_t n, jobject *o)
{
    jcur c = {s, s + n, 0};
    o->n = 0;
    jws(&c);
    if (c.p >= c.end || *c.p != '{')
        return -1;
    c.p++;
    jws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto tail;
    }
    for (;;) {
        const char *ks, *ke, *vs;
        enum jkind k;
        jws(&c);
        ks = c.p;
        if (jskip_string(&c) < 0)
            return -1;
        ke = c.p;
        jws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return -1;
        jws(&c);
        vs = c.p;
        if (jskip_value(&c, &k) < 0)
            return -1;
        if (o->n < 64) {
            jmember *m = &o->m[o->n++];
            if (jdecode_string(ks, (size_t)(ke - ks), m->key, sizeof m->key) < 0)
                m->key[0] = 0; /* over-long unknown key: ignored */
            m->kind = k;
            m->val = vs;
            m->len = (size_t)(c.p - vs);
        }
        jws(&c);
        if (c.p >= c.end)
            return -1;
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if (*c.p++ == '}')
            break;
        return -1;
    }
tail:
    jws(&c);
    return c.p == c.end ? 0 : -1;
}

static const jmember *jget(const jobject *o, const char *key)
{
    /* JSON allows duplicate keys; the last one wins, as in most readers. */
    for (int i = o->n - 1; i >= 0; i--)
        if (strcmp(o->m[i].key, key) == 0)
            return &o->m[i];
    return NULL;
}

/* Integer member: 1 when present and a JSON integer (section 2: integers must be JSON integers). */
static int jint(const jobject *o, const char *key, long long *out)
{
    const jmember *m = jget(o, key);
    if (!m || m->kind != J_INT)
        return 0;
    *out = strtoll(m->val, NULL, 10);
    return 1;
}

static int jstr(const jobject *o, const char *key, char *buf, size_t cap)
{
    const jmember *m = jget(o, key);
    if (!m || m->kind != J_STRING)
        return 0;
    return jdecode_string(m->val, m->len, buf, cap) == 0;
}

/* Does the array member `key` contain the string `want` (or, when want is NULL, the integer wanti)? */
static int jarray_has(const jobject *o, const char *key, const char *want, long long wanti)
{
    const jmember *m = jget(o, key);
    char tmp[256];
    if (!m || m->kind != J_ARRAY)
        return 0;
    jcur c = {m->val + 1, m->val + m->len - 1, 0};
    for (;;) {
        enum jkind k;
        const char *s;
        jws(&c);
        if (c.p >= c.end)
            return 0;
        s = c.p;
        if (jskip_value(&c, &k) < 0)
            return 0;
        if (want && k == J_STRING && jdecode_string(s, (size_t)(c.p - s), tmp, sizeof tmp) == 0 &&
            strcmp(tmp, want) == 0)
            return 1;
        if (!want && k == J_INT && strtoll(s, NULL, 10) == wanti)
            return 1;
        jws(&c);
        if (c.p < c.end && *c.p == ',')
            c.p++;
    }
}

/* ------------------------------------------------------------------ ZeroMQ messages */

#define MAX_PARTS 8

typedef struct {
    int n;                  /* parts after the delimiter */
    int had_delimiter;      /* first part was empty */
    int truncated;          /* more than MAX_PARTS parts */
    zmq_msg_t part[MAX_PARTS];
    jobject hdr;
    int hdr_ok;             /* header parsed as a JSON object */
} reply_t;

static void reply_close(reply_t *r)
{
    for (int i = 0; i < r->n; i++)
        zmq_msg_close(&r->part[i]);
    r->n = 0;
}

/* Send [delimiter?][part 0][part 1]... ; parts are (pointer, length) pairs. */
static void send_parts(void *sock, int delimiter, int nparts, const void *const *data, const size_t *len)
{
    if (delimiter && zmq_send(sock, "", 0, nparts ? ZMQ_SNDMORE : 0) < 0)
        die("zmq_send");
    for (int i = 0; i < nparts; i++)
        if (zmq_send(sock, data[i], len[i], i + 1 < nparts ? ZMQ_SNDMORE : 0) < 0)
            die("zmq_send");
}

static void send_header(void *sock, const char *hdr)
{
    const void *d[1] = {hdr};
    size_t l[1] = {strlen(hdr)};
    send_parts(sock, 1, 1, d, l);
}

/* Wait up to timeout_ms for one multipart message. Returns 1 with *r filled, 0 on timeout. */
static int recv_reply(void *sock, int timeout_ms, reply_t *r)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    int more = 1, first = 1;
    memset(r, 0, sizeof *r);
    int rc = zmq_poll(&item, 1, timeout_ms);
    if (rc < 0)
        die("zmq_poll");
    if (rc == 0)
        return 0;
    while (more) {
        zmq_msg_t m;
        size_t sz = sizeof more;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0)
            die("zmq_msg_recv");
        if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) < 0)
            die("zmq_getsockopt");
        if (first && zmq_msg_size(&m) == 0) {
            r->had_delimiter = 1; /* section 1: an empty first frame is always the delimiter */
            zmq_msg_close(&m);
        } else if (r->n < MAX_PARTS) {
            r->part[r->n++] = m;
        } else {
            r->truncated = 1;
            zmq_msg_close(&m);
        }
        first = 0;
    }
    if (r->n > 0)
        r->hdr_ok = jparse(zmq_msg_data(&r->part[0]), zmq_msg_size(&r->part[0]), &r->hdr) == 0;
    return 1;
}

/* ------------------------------------------------------------------ synthetic frames */

typedef struct {
    int w, h;
    int x0, y0, x1, y1; /* red square, inclusive-exclusive */
} scene_t;

/* Background pixel colour without the square (the "ground truth" the fill should approach). */
static void background(const scene_t *s, int x, int y, int frame, unsigned char px[3])
{
    px[0] = (unsigned char)(40 + (x * 120) / (s->w - 1));
    px[1] = (unsigned char)(60 + (y * 120) / (s->h - 1));
    px[2] = (unsigned char)(150 + (frame * 7) % 40);
}

static void make_frame(const scene_t *s, int frame, unsigned char *img, unsigned char *mask)
{
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            unsigned char *p = img + ((size_t)y * s->w + x) * 3; /* section 4: (y*w + x) * channels */
            int in = x >= s->x0 && x < s->x1 && y >= s->y0 && y < s->y1;
            if (in) {
                p[0] = 255, p[1] = 0, p[2] = 0;
            } else {
                background(s, x, y, frame, p);
            }
            mask[(size_t)y * s->w + x] = in ? 255 : 0;
        }
}

/* Chebyshev distance from (x, y) to the square; 0 inside. A hole grown by d pixels with any structuring
 * element no wider than a (2d+1) square stays within distance d, so pixels farther away must be unchanged. */
static int dist_to_square(const scene_t *s, int x, int y)
{
    int dx = x < s->x0 ? s->x0 - x : (x >= s->x1 ? x - s->x1 + 1 : 0);
    int dy = y < s->y0 ? s->y0 - y : (y >= s->y1 ? y - s->y1 + 1 : 0);
    return dx > dy ? dx : dy;
}

/* ------------------------------------------------------------------ the exchange */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

typedef struct {
    const char *endpoint;
    int frames, w, h, window, timeout_ms;
} opts_t;

static void *open_dealer(void *ctx, const opts_t *o)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    if (!s)
        die("zmq_socket");
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0) /* section 13.1 */
        die("zmq_setsockopt(LINGER)");
    if (zmq_connect(s, o->endpoint) < 0)
        die("zmq_connect");
    return s;
}

static void frame_header(char *buf, size_t cap, const char *stream, long long req, long long index, int w, int h,
                         long long pts, const char *extra)
{
    snprintf(buf, cap,
             "{\"v\":1,\"type\":\"frame\",\"stream\":\"%s\",\"req\":%lld,\"index\":%lld,\"width\":%d,\"height\":%d,"
             "\"channels\":3,\"dtype\":\"uint8\",\"encoding\":\"raw\",\"mask_encoding\":\"raw\",\"pts\":%lld,"
             "\"time_base\":[1,25]%s}",
             stream, req, index, w, h, pts, extra ? extra : "");
}

/* Check a reply's envelope and the common echoes (section 2: a reply echoes req, stream, index). */
static int check_envelope(const reply_t *r, const char *what, const char *type, long long req, const char *stream)
{
    char t[32] = "", st[300] = "";
    long long v = -1, rq = -1;
    int ok = 1;
    ok &= r->had_delimiter && r->n >= 1 && r->hdr_ok;
    check(r->had_delimiter, "%s: reply starts with the empty delimiter", what);
    check(r->n >= 1 && r->hdr_ok, "%s: header is a JSON object", what);
    if (!(r->n >= 1 && r->hdr_ok))
        return 0;
    jstr(&r->hdr, "type", t, sizeof t);
    check(jint(&r->hdr, "v", &v) && v == 1, "%s: v is the integer 1", what);
    if (strcmp(t, type) != 0) {
        char code[64] = "", msg[1100] = "";
        jstr(&r->hdr, "code", code, sizeof code);
        jstr(&r->hdr, "message", msg, sizeof msg);
        check(0, "%s: type is '%s' (got '%s' %s %s)", what, type, t, code, msg);
        return 0;
    }
    check(1, "%s: type is '%s'", what, type);
    ok &= jint(&r->hdr, "req", &rq) && rq == req;
    check(jint(&r->hdr, "req", &rq) && rq == req, "%s: req %lld echoed (got %lld)", what, req, rq);
    if (stream) {
        int has = jstr(&r->hdr, "stream", st, sizeof st);
        check(has && strcmp(st, stream) == 0, "%s: stream '%s' echoed (got '%s')", what, stream, has ? st : "<none>");
    }
    return ok;
}

static void *open_dealer(void *ctx, const opts_t *o);

/* Section 10 "lazy pirate": the server may still be starting, so on a timeout close the socket, open a new
 * one and resend, up to 3 tries. */
static int do_hello(void *ctx, void **sock, const opts_t *o, int *dilate, int *threshold, long long *max_side)
{
    reply_t r;
    long long ver = -1, d = -1, th = -1, ms = -1, mmb = -1;
    char role[64] = "", st[64] = "";
    int tries = 0;
    for (;;) {
        send_header(*sock, "{\"v\":1,\"type\":\"hello\",\"req\":1,\"stream\":\"c-hello\",\"versions\":[1],"
                           "\"name\":\"streamfill-c-host-client\"}");
        if (recv_reply(*sock, o->timeout_ms, &r))
            break;
        if (++tries == 3) {
            check(0, "hello: reply within %d ms (3 tries)", o->timeout_ms);
            return 0;
        }
        info("hello: no reply in %d ms; new socket, try %d", o->timeout_ms, tries + 1);
        zmq_close(*sock);
        *sock = open_dealer(ctx, o);
    }
    check_envelope(&r, "hello", "hello", 1, NULL);
    soft_check(jstr(&r.hdr, "stream", st, sizeof st) && strcmp(st, "c-hello") == 0,
               "hello: stream 'c-hello' echoed (section 2: replies echo stream)");
    check(r.n == 1, "hello: no payload frames (got %d)", r.n - 1);
    int has_ver = jint(&r.hdr, "version", &ver), has_d = jint(&r.hdr, "mask_dilate", &d);
    int has_th = jint(&r.hdr, "mask_threshold", &th), has_ms = jint(&r.hdr, "max_side", &ms);
    int has_mmb = jint(&r.hdr, "max_message_bytes", &mmb);
    check(has_ver && ver == 1, "hello: version 1 chosen (got %lld)", ver);
    check(jarray_has(&r.hdr, "versions", NULL, 1), "hello: versions lists 1");
    check(jstr(&r.hdr, "role", role, sizeof role) && strcmp(role, "serve") == 0, "hello: role 'serve' ('%s')", role);
    check(jarray_has(&r.hdr, "encodings", "raw", 0), "hello: encodings lists raw");
    check(has_d && d >= 0, "hello: mask_dilate is a non-negative integer (%lld)", d);
    check(has_th && th >= 0 && th <= 255, "hello: mask_threshold in 0..255 (%lld)", th);
    check(has_ms && ms >= 1 && ms <= 32768, "hello: max_side in 1..32768 (%lld)", ms);
    check(has_mmb && mmb > 0, "hello: max_message_bytes (%lld)", mmb);
    *dilate = d >= 0 ? (int)d : 4;
    *threshold = th >= 0 ? (int)th : 127;
    *max_side = ms > 0 ? ms : 16384;
    reply_close(&r);
    return ver == 1;
}

typedef struct {
    double hole_err;     /* mean |result - background| over the square, all channels */
    double red_left;     /* mean of (R - (G+B)/2) inside the square after filling */
    long changed_far;    /* pixels beyond the grown hole that differ from the input */
    long changed_band;   /* pixels between the square and the grown hole that differ (allowed) */
} frame_stats;

static void analyse(const scene_t *s, int frame, const unsigned char *sent, const unsigned char *got, int dilate,
                    frame_stats *st)
{
    double err = 0, red = 0;
    long n = 0;
    memset(st, 0, sizeof *st);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            size_t off = ((size_t)y * s->w + x) * 3;
            int d = dist_to_square(s, x, y);
            if (d == 0) {
                unsigned char bg[3];
                background(s, x, y, frame, bg);
                for (int c = 0; c < 3; c++)
                    err += abs((int)got[off + c] - (int)bg[c]);
                red += (double)got[off] - ((double)got[off + 1] + got[off + 2]) / 2.0;
                n++;
            } else if (memcmp(sent + off, got + off, 3) != 0) {
                if (d > dilate)
                    st->changed_far++;
                else
                    st->changed_band++;
            }
        }
    st->hole_err = err / (3.0 * n);
    st->red_left = red / n;
}

/* Check one `result` header and payload against frame i as sent. Returns 1 when everything holds. */
static int check_result(reply_t *r, const scene_t *s, int i, const unsigned char *sent, int dilate,
                        const char *stream, frame_stats *st)
{
    char what[64], dtype[16] = "", enc[16] = "";
    long long idx = -1, w = -1, h = -1, ch = -1, pts = -1;
    size_t isz = (size_t)s->w * s->h * 3;
    int good = 1;
    snprintf(what, sizeof what, "frame %d", i);
    if (!check_envelope(r, what, "result", 100 + i, stream))
        return 0;
    good &= jint(&r->hdr, "index", &idx) && idx == i;
    check(idx == i, "%s: index echoed (%lld)", what, idx);
    good &= jint(&r->hdr, "width", &w) && w == s->w && jint(&r->hdr, "height", &h) && h == s->h;
    check(w == s->w && h == s->h, "%s: size %lldx%lld", what, w, h);
    good &= jint(&r->hdr, "channels", &ch) && ch == 3;
    check(ch == 3, "%s: channels 3", what);
    good &= jstr(&r->hdr, "dtype", dtype, sizeof dtype) && strcmp(dtype, "uint8") == 0;
    check(strcmp(dtype, "uint8") == 0, "%s: dtype uint8", what);
    /* encoding is optional (default raw); reply_encoding defaults to the request's encoding (raw) */
    if (jget(&r->hdr, "encoding"))
        good &= jstr(&r->hdr, "encoding", enc, sizeof enc) && strcmp(enc, "raw") == 0;
    check(!jget(&r->hdr, "encoding") || strcmp(enc, "raw") == 0, "%s: encoding raw", what);
    good &= jint(&r->hdr, "pts", &pts) && pts == 3600LL * i;
    check(pts == 3600LL * i, "%s: pts echoed (%lld)", what, pts);
    good &= jarray_has(&r->hdr, "time_base", NULL, 1) && jarray_has(&r->hdr, "time_base", NULL, 25);
    check(jarray_has(&r->hdr, "time_base", NULL, 25), "%s: time_base echoed", what);
    good &= r->n == 2 && zmq_msg_size(&r->part[1]) == isz;
    check(r->n == 2 && zmq_msg_size(&r->part[1]) == isz, "%s: one payload of %zu bytes (got %d parts, %zu bytes)",
          what, isz, r->n, r->n >= 2 ? zmq_msg_size(&r->part[1]) : (size_t)0);
    if (!good)
        return 0;
    analyse(s, i, sent, zmq_msg_data(&r->part[1]), dilate, st);
    /* The background varies by ~25 levels across the square; the red square is far from it. */
    int filled = st->hole_err < 20.0 && st->red_left < 60.0;
    check(filled, "%s: hole filled (mean |fill - background| %.1f, red excess %.1f; the square had 255)", what,
          st->hole_err, st->red_left);
    check(st->changed_far == 0, "%s: pixels beyond the hole grown by %d px byte-identical (%ld differ)", what, dilate,
          st->changed_far);
    info("%s: %ld pixels changed in the %d px band around the mask (allowed)", what, st->changed_band, dilate);
    return filled && st->changed_far == 0;
}

/* Section 6.1 / 13: keep `window` frames in flight on the DEALER, match replies by `req`, resend on `busy`.
 * Replies other than `busy` must come back in the order their requests were sent. */
static int do_frames(void *sock, const opts_t *o, int dilate)
{
    const char *stream = "c-host";
    scene_t s = {o->w, o->h, o->w * 3 / 8, o->h * 3 / 8, o->w * 5 / 8, o->h * 5 / 8};
    size_t isz = (size_t)o->w * o->h * 3, msz = (size_t)o->w * o->h;
    unsigned char **img = calloc((size_t)o->frames, sizeof *img);
    unsigned char *mask = malloc(msz);
    int *state = calloc((size_t)o->frames, sizeof *state); /* 0 to send, 1 in flight, 2 answered */
    long *seq = calloc((size_t)o->frames, sizeof *seq);     /* send sequence number of the latest send */
    long next_seq = 0, last_seq = -1;
    int answered = 0, ok_frames = 0, busy = 0, in_flight = 0, sends = 0;
    double worst_err = 0, worst_red = -1e9;
    double busy_since = -1; /* when serve began answering nothing but busy (its queue kept full) */
    if (!img || !mask || !state || !seq) {
        fprintf(stderr, "host_client: out of memory\n");
        exit(3);
    }
    for (int i = 0; i < o->frames; i++) {
        img[i] = malloc(isz);
        if (!img[i]) {
            fprintf(stderr, "host_client: out of memory\n");
            exit(3);
        }
    }
    while (answered < o->frames) {
        for (int i = 0; i < o->frames && in_flight < o->window; i++) {
            char hdr[1024];
            if (state[i] != 0)
                continue;
            make_frame(&s, i, img[i], mask);
            frame_header(hdr, sizeof hdr, stream, 100 + i, i, o->w, o->h, 3600LL * i, NULL);
            const void *d[3] = {hdr, img[i], mask};
            size_t l[3] = {strlen(hdr), isz, msz};
            send_parts(sock, 1, 3, d, l);
            state[i] = 1;
            seq[i] = next_seq++;
            in_flight++;
            sends++;
        }
        reply_t r;
        long long rq = -1;
        char code[64] = "";
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "frames: a reply within %d ms (%d in flight)", o->timeout_ms, in_flight);
            break;
        }
        int i = r.hdr_ok && jint(&r.hdr, "req", &rq) ? (int)(rq - 100) : -1;
        if (i < 0 || i >= o->frames || state[i] != 1) {
            check(0, "frames: reply for a request in flight (req %lld)", rq);
            reply_close(&r);
            continue;
        }
        in_flight--;
        if (jstr(&r.hdr, "code", code, sizeof code) && strcmp(code, "busy") == 0) {
            long long idx = -1;
            jint(&r.hdr, "index", &idx);
            if (busy == 0)
                check(idx == i, "frame %d: busy echoes req and index; resending", i);
            busy++;
            state[i] = 0; /* may overtake results still in progress (6.1): not an order violation */
            reply_close(&r);
            if (busy_since < 0)
                busy_since = now_s();
            else if (now_s() - busy_since > 3.0 * o->timeout_ms / 1000.0) {
                /* busy replies come at once, so the reply timeout never strikes: without a bound a serve whose
                   queue stays full would be asked again forever */
                check(0, "frames: serve stayed busy for %.0f s (its queue is full)", now_s() - busy_since);
                break;
            }
            nanosleep(&(struct timespec){0, 20000000L}, NULL);
            continue;
        }
        busy_since = -1;
        check(seq[i] > last_seq, "frame %d: answered in request order", i);
        last_seq = seq[i];
        state[i] = 2;
        answered++;
        frame_stats st;
        if (check_result(&r, &s, i, img[i], dilate, stream, &st)) {
            ok_frames++;
            if (st.hole_err > worst_err)
                worst_err = st.hole_err;
            if (st.red_left > worst_red)
                worst_red = st.red_left;
        }
        reply_close(&r);
    }
    printf("frames: %d frames, %d sends, %d busy replies, %d answered, %d fully correct; worst hole error %.1f, "
           "worst red excess %.1f\n",
           o->frames, sends, busy, answered, ok_frames, worst_err, worst_red);
    for (int i = 0; i < o->frames; i++)
        free(img[i]);
    free(img);
    free(mask);
    free(state);
    free(seq);
    return ok_frames == o->frames;
}

/* Section 4: mask bytes above mask_threshold are holes, others are kept. A square of value `threshold` must
 * leave the frame byte-identical; a square of `threshold + 1` must change it. Also checks a png reply. */
static void do_threshold_and_png(void *sock, const opts_t *o, int threshold)
{
    const int w = 32, h = 24;
    scene_t s = {w, h, 10, 8, 20, 16};
    unsigned char img[32 * 24 * 3], mask[32 * 24];
    char hdr[1024];
    make_frame(&s, 0, img, mask);
    for (int k = 0; k < 2; k++) {
        int val = threshold + k;
        reply_t r;
        for (size_t j = 0; j < sizeof mask; j++)
            mask[j] = mask[j] ? (unsigned char)val : 0;
        frame_header(hdr, sizeof hdr, "c-thr", 300 + k, k, w, h, 0, NULL);
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        send_parts(sock, 1, 3, d, l);
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "threshold: a reply within %d ms", o->timeout_ms);
            return;
        }
        if (check_envelope(&r, "threshold", "result", 300 + k, "c-thr") && r.n == 2 &&
            zmq_msg_size(&r.part[1]) == sizeof img) {
            int same = memcmp(zmq_msg_data(&r.part[1]), img, sizeof img) == 0;
            if (k == 0)
                check(same, "threshold: mask value %d (= mask_threshold) keeps every pixel", val);
            else
                check(!same, "threshold: mask value %d (> mask_threshold) is a hole", val);
        } else {
            check(0, "threshold: raw result of %zu bytes", sizeof img);
        }
        reply_close(&r);
    }
    /* reply_encoding png: section 5 says streamfill writes 8-bit RGB (colour type 2) non-interlaced PNGs */
    frame_header(hdr, sizeof hdr, "c-thr", 302, 2, w, h, 0, ",\"reply_encoding\":\"png\"");
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        reply_t r;
        char enc[16] = "";
        send_parts(sock, 1, 3, d, l);
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "png reply: a reply within %d ms", o->timeout_ms);
            return;
        }
        if (check_envelope(&r, "png reply", "result", 302, "c-thr")) {
            const unsigned char *p = r.n == 2 ? zmq_msg_data(&r.part[1]) : NULL;
            size_t n = r.n == 2 ? zmq_msg_size(&r.part[1]) : 0;
            jstr(&r.hdr, "encoding", enc, sizeof enc);
            check(strcmp(enc, "png") == 0, "png reply: encoding png ('%s')", enc);
            int ok = n >= 33 && memcmp(p, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16) == 0;
            if (ok) {
                unsigned pw = (unsigned)p[16] << 24 | p[17] << 16 | p[18] << 8 | p[19];
                unsigned ph = (unsigned)p[20] << 24 | p[21] << 16 | p[22] << 8 | p[23];
                ok = pw == (unsigned)w && ph == (unsigned)h && p[24] == 8 && p[25] == 2 && p[28] == 0;
            }
            check(ok, "png reply: a %dx%d 8-bit RGB non-interlaced PNG (%zu bytes)", w, h, n);
        }
        reply_close(&r);
    }
}

/* One malformed request: send the given parts (after the delimiter) and expect `error` with `code`.
 * code2 (optional) is a second acceptable code where the spec allows either. */
static void expect_error(void *sock, const opts_t *o, const char *what, int nparts, const void *const *d,
                         const size_t *l, const char *code, const char *code2, long long req, long long index,
                         const char *stream)
{
    reply_t r;
    char got[64] = "", msg[1100] = "";
    long long idx = -1;
    send_parts(sock, 1, nparts, d, l);
    if (!recv_reply(sock, o->timeout_ms, &r)) {
        check(0, "%s: an error reply within %d ms", what, o->timeout_ms);
        return;
    }
    if (r.hdr_ok) {
        jstr(&r.hdr, "code", got, sizeof got);
        jstr(&r.hdr, "message", msg, sizeof msg);
    }
    if (req >= 0) {
        check_envelope(&r, what, "error", req, stream);
    } else {
        char t[32] = "";
        jstr(&r.hdr, "type", t, sizeof t);
        check(r.had_delimiter && r.hdr_ok && strcmp(t, "error") == 0, "%s: an error reply", what);
    }
    check(r.n == 1, "%s: error has no payload frames (got %d)", what, r.n - 1);
    check(strcmp(got, code) == 0 || (code2 && strcmp(got, code2) == 0), "%s: code %s%s%s (got '%s': %s)", what, code,
          code2 ? " or " : "", code2 ? code2 : "", got, msg);
    check(jget(&r.hdr, "message") && strlen(msg) > 0 && strlen(msg) <= 1000 * 4, "%s: has a message", what);
    if (index >= 0 && jint(&r.hdr, "index", &idx) >= 0)
        check(jget(&r.hdr, "index") && idx == index, "%s: index %lld echoed (got %lld)", what, index, idx);
    if (strcmp(code, "unsupported_version") == 0)
        check(jarray_has(&r.hdr, "versions", NULL, 1), "%s: error carries versions [1]", what);
    reply_close(&r);
}

static void do_errors(void *sock, const opts_t *o, long long max_side)
{
    const int w = 4, h = 3;
    unsigned char img[4 * 3 * 3], mask[4 * 3];
    char hdr[1024];
    const char *st = "c-bad";
    memset(img, 90, sizeof img);
    memset(mask, 0, sizeof mask);
    mask[5] = 255;

    /* 12.4 / 7 bad_payload: image one byte short */
    frame_header(hdr, sizeof hdr, st, 201, 1, w, h, 0, NULL);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img - 1, sizeof mask};
        expect_error(sock, o, "short image", 3, d, l, "bad_payload", NULL, 201, 1, st);
    }
    /* bad_payload: mask one byte long */
    frame_header(hdr, sizeof hdr, st, 202, 2, w, h, 0, NULL);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask + 0};
        unsigned char big[13];
        memcpy(big, mask, 12);
        big[12] = 0;
        d[2] = big;
        l[2] = 13;
        expect_error(sock, o, "long mask", 3, d, l, "bad_payload", NULL, 202, 2, st);
    }
    /* 6.1 / 7 bad_message: serve got a frame without its mask */
    frame_header(hdr, sizeof hdr, st, 203, 3, w, h, 0, NULL);
    {
        const void *d[2] = {hdr, img};
        size_t l[2] = {strlen(hdr), sizeof img};
        expect_error(sock, o, "frame without mask", 2, d, l, "bad_message", NULL, 203, 3, st);
    }
    /* bad_json: not JSON at all (nothing can be echoed) */
    {
        const char *bad = "this is not json";
        const void *d[1] = {bad};
        size_t l[1] = {strlen(bad)};
        expect_error(sock, o, "not json", 1, d, l, "bad_json", NULL, -1, -1, NULL);
    }
    /* bad_json: a JSON array is not an object */
    {
        const char *bad = "[1,2,3]";
        const void *d[1] = {bad};
        size_t l[1] = {strlen(bad)};
        expect_error(sock, o, "json array", 1, d, l, "bad_json", NULL, -1, -1, NULL);
    }
    /* bad_header: an integer written as 4.0 (section 2: integers must be JSON integers) */
    snprintf(hdr, sizeof hdr,
             "{\"v\":1,\"type\":\"frame\",\"stream\":\"%s\",\"req\":204,\"index\":4,\"width\":4.0,\"height\":3,"
             "\"channels\":3,\"dtype\":\"uint8\"}",
             st);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "width 4.0", 3, d, l, "bad_header", NULL, 204, 4, st);
    }
    /* bad_header: a required field missing (dtype) */
    snprintf(hdr, sizeof hdr,
             "{\"v\":1,\"type\":\"frame\",\"stream\":\"%s\",\"req\":205,\"index\":5,\"width\":4,\"height\":3,"
             "\"channels\":3}",
             st);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "missing dtype", 3, d, l, "bad_header", NULL, 205, 5, st);
    }
    /* bad_header: channels 4 on a frame */
    frame_header(hdr, sizeof hdr, st, 206, 6, w, h, 0, NULL);
    {
        char *c = strstr(hdr, "\"channels\":3");
        c[11] = '4';
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "channels 4", 3, d, l, "bad_header", NULL, 206, 6, st);
    }
    /* width over max_side: the spec allows reading this as out of range or too large */
    frame_header(hdr, sizeof hdr, st, 207, 7, (int)max_side + 1, 1, 0, NULL);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "width max_side+1", 3, d, l, "bad_header", "too_large", 207, 7, st);
    }
    /* unsupported_version: v 2 */
    snprintf(hdr, sizeof hdr, "{\"v\":2,\"type\":\"frame\",\"stream\":\"%s\",\"req\":208,\"index\":8,\"width\":4,"
             "\"height\":3,\"channels\":3,\"dtype\":\"uint8\"}", st);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "v 2", 3, d, l, "unsupported_version", NULL, 208, -1, st);
    }
    /* unknown_type */
    {
        const char *bad = "{\"v\":1,\"type\":\"gimme\",\"req\":209,\"stream\":\"c-bad\"}";
        const void *d[1] = {bad};
        size_t l[1] = {strlen(bad)};
        expect_error(sock, o, "type gimme", 1, d, l, "unknown_type", NULL, 209, -1, st);
    }
    /* unexpected_type: serve does not take result (6.1) */
    frame_header(hdr, sizeof hdr, st, 210, 10, w, h, 0, NULL);
    {
        char res[1024];
        char *t = strstr(hdr, "\"frame\"");
        snprintf(res, sizeof res, "%.*s\"result\"%s", (int)(t - hdr), hdr, t + 7);
        const void *d[2] = {res, img};
        size_t l[2] = {strlen(res), sizeof img};
        expect_error(sock, o, "type result", 2, d, l, "unexpected_type", NULL, 210, 10, st);
    }
    /* unsupported_dtype */
    frame_header(hdr, sizeof hdr, st, 211, 11, w, h, 0, NULL);
    {
        char *t = strstr(hdr, "\"uint8\"");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s\"uint16\"%s", (int)(t - hdr), hdr, t + 7);
        const void *d[3] = {buf, img, mask};
        size_t l[3] = {strlen(buf), sizeof img, sizeof mask};
        expect_error(sock, o, "dtype uint16", 3, d, l, "unsupported_dtype", NULL, 211, 11, st);
    }
    /* unsupported_encoding: an unknown reply_encoding */
    frame_header(hdr, sizeof hdr, st, 212, 12, w, h, 0, ",\"reply_encoding\":\"webp\"");
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        expect_error(sock, o, "reply_encoding webp", 3, d, l, "unsupported_encoding", NULL, 212, 12, st);
    }
    /* unsupported_encoding: jpeg is never for masks (section 5) */
    frame_header(hdr, sizeof hdr, st, 213, 13, w, h, 0, NULL);
    {
        char *t = strstr(hdr, "\"mask_encoding\":\"raw\"");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s\"mask_encoding\":\"jpeg\"%s", (int)(t - hdr), hdr, t + 21);
        const void *d[3] = {buf, img, mask};
        size_t l[3] = {strlen(buf), sizeof img, sizeof mask};
        expect_error(sock, o, "mask_encoding jpeg", 3, d, l, "unsupported_encoding", NULL, 213, 13, st);
    }
    /* bad_payload: encoding png but the payload is not a PNG */
    frame_header(hdr, sizeof hdr, st, 214, 14, w, h, 0, NULL);
    {
        char *t = strstr(hdr, "\"encoding\":\"raw\"");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s\"encoding\":\"png\"%s", (int)(t - hdr), hdr, t + 16);
        const void *d[3] = {buf, img, mask};
        size_t l[3] = {strlen(buf), sizeof img, sizeof mask};
        expect_error(sock, o, "png that is not a PNG", 3, d, l, "bad_payload", NULL, 214, 14, st);
    }
    /* section 12.5: the spec's PNG mask of the 2x2 example must be accepted (result, not error) */
    {
        static const unsigned char png[] = {
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x57, 0xdd, 0x52,
            0xf8, 0x00, 0x00, 0x00, 0x0e, 0x49, 0x44, 0x41, 0x54, 0x78, 0x5e, 0x63, 0x62, 0xf8, 0xcf, 0xc4,
            0xc0, 0x08, 0x00, 0x04, 0x15, 0x01, 0x05, 0xb4, 0xbf, 0x63, 0xaf, 0x00, 0x00, 0x00, 0x00, 0x49,
            0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
        static const unsigned char im[12] = {0xff, 0, 0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        const char *h2 = "{\"v\":1,\"type\":\"frame\",\"stream\":\"clip1\",\"req\":2,\"index\":0,\"width\":2,"
                         "\"height\":2,\"channels\":3,\"dtype\":\"uint8\",\"encoding\":\"raw\",\"pts\":0,"
                         "\"time_base\":[1,25],\"mask_encoding\":\"png\"}";
        const void *d[3] = {h2, im, png};
        size_t l[3] = {strlen(h2), sizeof im, sizeof png};
        reply_t r;
        send_parts(sock, 1, 3, d, l);
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "12.5 PNG mask: a reply within %d ms", o->timeout_ms);
        } else {
            check(sizeof png == 71, "12.5 PNG mask: example is 71 bytes");
            check_envelope(&r, "12.5 PNG mask", "result", 2, "clip1");
            check(r.n == 2 && zmq_msg_size(&r.part[1]) == 12, "12.5 PNG mask: 12-byte result");
            reply_close(&r);
        }
    }
    /* section 8: hello offering only versions this server does not speak */
    {
        reply_t r;
        long long rq = -1;
        char t[32] = "", code[64] = "";
        send_header(sock, "{\"v\":1,\"type\":\"hello\",\"req\":216,\"versions\":[2,3]}");
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "hello [2,3]: a reply within %d ms", o->timeout_ms);
        } else {
            if (r.hdr_ok) {
                jstr(&r.hdr, "type", t, sizeof t);
                jstr(&r.hdr, "code", code, sizeof code);
            }
            check(strcmp(t, "error") == 0 && strcmp(code, "unsupported_version") == 0,
                  "hello [2,3]: error unsupported_version ('%s' '%s')", t, code);
            check(jarray_has(&r.hdr, "versions", NULL, 1), "hello [2,3]: error carries versions [1]");
            soft_check(jint(&r.hdr, "req", &rq) && rq == 216, "hello [2,3]: req 216 echoed (section 7)");
            reply_close(&r);
        }
    }
    /* 6.1: a DEALER that sends no delimiter gets replies without one */
    {
        const char *hh = "{\"v\":1,\"type\":\"hello\",\"req\":215}";
        const void *d[1] = {hh};
        size_t l[1] = {strlen(hh)};
        reply_t r;
        long long rq = -1;
        char t[32] = "";
        send_parts(sock, 0, 1, d, l);
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "no delimiter: a reply within %d ms", o->timeout_ms);
        } else {
            if (r.hdr_ok)
                jstr(&r.hdr, "type", t, sizeof t);
            check(!r.had_delimiter, "no delimiter: reply has no delimiter either");
            check(r.hdr_ok && strcmp(t, "hello") == 0 && jint(&r.hdr, "req", &rq) && rq == 215,
                  "no delimiter: hello reply with req 215");
            reply_close(&r);
        }
    }
}

/* Section 6.1 (ordering): every reply but `busy` comes back in request order, errors and hello included. */
static void do_order(void *sock, const opts_t *o)
{
    enum { W = 64, H = 48 };
    static unsigned char img[W * H * 3], mask[W * H];
    scene_t s = {W, H, 20, 16, 40, 32};
    char hdr[1024], bad[1024];
    long long got[4] = {-1, -1, -1, -1};
    int busy[4] = {0, 0, 0, 0};
    make_frame(&s, 0, img, mask);
    frame_header(hdr, sizeof hdr, "c-order", 400, 0, W, H, 0, NULL);
    frame_header(bad, sizeof bad, "c-order", 401, 1, W, H, 0, NULL);
    {
        const void *d[3] = {hdr, img, mask};
        size_t l[3] = {strlen(hdr), sizeof img, sizeof mask};
        send_parts(sock, 1, 3, d, l);
        d[0] = bad;
        l[0] = strlen(bad);
        l[1] = 7; /* bad_payload */
        send_parts(sock, 1, 3, d, l);
        send_header(sock, "{\"v\":1,\"type\":\"hello\",\"req\":402}");
        frame_header(hdr, sizeof hdr, "c-order", 403, 2, W, H, 0, NULL);
        d[0] = hdr;
        l[0] = strlen(hdr);
        l[1] = sizeof img;
        send_parts(sock, 1, 3, d, l);
    }
    for (int k = 0; k < 4; k++) {
        reply_t r;
        if (!recv_reply(sock, o->timeout_ms, &r)) {
            check(0, "order: reply %d of 4 within %d ms", k + 1, o->timeout_ms);
            return;
        }
        if (r.hdr_ok) {
            char t[32] = "", code[64] = "";
            jint(&r.hdr, "req", &got[k]);
            jstr(&r.hdr, "type", t, sizeof t);
            jstr(&r.hdr, "code", code, sizeof code);
            busy[k] = strcmp(code, "busy") == 0;
            info("order: reply %d: req %lld %s %s", k + 1, got[k], t, code);
        }
        reply_close(&r);
    }
    /* busy replies may overtake (6.1); all the others keep request order */
    long long last = -1;
    int in_order = 1, n_busy = 0;
    for (int k = 0; k < 4; k++) {
        if (busy[k]) {
            n_busy++;
            continue;
        }
        in_order &= got[k] > last;
        last = got[k];
    }
    check(in_order, "order: result, error, hello, result answered in request order, %d busy (got req %lld %lld %lld "
          "%lld)", n_busy, got[0], got[1], got[2], got[3]);
}

static void do_bye(void *sock, const opts_t *o)
{
    char hdr[256];
    reply_t r;
    snprintf(hdr, sizeof hdr, "{\"v\":1,\"type\":\"bye\",\"req\":999,\"stream\":\"c-host\",\"count\":%d}", o->frames);
    send_header(sock, hdr);
    if (!recv_reply(sock, o->timeout_ms, &r)) {
        check(0, "bye: a reply within %d ms", o->timeout_ms);
        return;
    }
    check_envelope(&r, "bye", "bye", 999, "c-host");
    check(r.n == 1, "bye: no payload frames");
    reply_close(&r);
}

static void usage(void)
{
    fprintf(stderr, "usage: host_client [-e ENDPOINT] [-n FRAMES] [-W WIDTH] [-H HEIGHT] [-w WINDOW] "
                    "[-t TIMEOUT_MS] [-q] [-s]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {"tcp://127.0.0.1:5555", 8, 160, 120, 4, 10000};
    int opt, dilate = 4, threshold = 127;
    long long max_side = 16384;
    while ((opt = getopt(argc, argv, "e:n:W:H:w:t:qs")) != -1) {
        switch (opt) {
        case 'e': o.endpoint = optarg; break;
        case 'n': o.frames = atoi(optarg); break;
        case 'W': o.w = atoi(optarg); break;
        case 'H': o.h = atoi(optarg); break;
        case 'w': o.window = atoi(optarg); break;
        case 't': o.timeout_ms = atoi(optarg); break;
        case 'q': g_quiet = 1; break;
        case 's': g_strict = 1; break;
        default: usage();
        }
    }
    if (optind != argc || o.frames < 1 || o.w < 16 || o.h < 16 || o.window < 1 || o.timeout_ms < 1)
        usage();

    void *ctx = zmq_ctx_new();
    if (!ctx)
        die("zmq_ctx_new");
    void *sock = open_dealer(ctx, &o);

    int hello_ok = do_hello(ctx, &sock, &o, &dilate, &threshold, &max_side);
    if (hello_ok) {
        do_frames(sock, &o, dilate);
        if (threshold < 255)
            do_threshold_and_png(sock, &o, threshold);
        do_order(sock, &o);
        do_errors(sock, &o, max_side);
        do_bye(sock, &o);
    }

    zmq_close(sock);
    zmq_ctx_term(ctx);
    printf("summary: %d checks passed, %d failed, %d warnings (%s, %d frames %dx%d, mask_dilate %d, mask_threshold %d)\n", g_pass,
           g_fail, g_warn, o.endpoint, o.frames, o.w, o.h, dilate, threshold);
    return g_fail == 0 && hello_ok ? 0 : 1;
}
