/* A virtual PIN-pad reader for pcscd: an IFD handler that stack.sh builds and pcscd loads from a
 * readers.d entry. Test stack only: nothing of this ships to users.
 *
 * The card side speaks vpcd's wire protocol, so the virtual card (cpx-sim insert --port PORT) connects to
 * it as to any vpcd reader: TCP on 127.0.0.1:PORT, every frame a big-endian u16 length and its bytes; a
 * 1-byte frame is a control byte (00 power off, 01 power on, 02 reset, 04 get ATR: only the last is
 * answered, with the ATR); any other frame is a command APDU answered by one response frame.
 *
 * The reader side is what a CCID PIN-pad reader offers through PC/SC part 10: CM_IOCTL_GET_FEATURE_REQUEST
 * lists FEATURE_VERIFY_PIN_DIRECT, FEATURE_MODIFY_PIN_DIRECT, FEATURE_IFD_PIN_PROPERTIES and
 * FEATURE_GET_TLV_PROPERTIES; a VERIFY (MODIFY) PIN DIRECT takes a PIN_VERIFY_STRUCTURE
 * (PIN_MODIFY_STRUCTURE), reads the code from the keypad and writes it into the APDU template the way the
 * CCID specification says (format binary/BCD/ASCII, position, justification, block size, length field;
 * the template's bytes are the padding), sends the APDU to the card and returns the card's answer. The
 * reader's own answers: 64 00 no key before the timeout, 64 01 cancel pressed, 64 02 the new code and its
 * confirmation differ, 64 03 a code shorter than the minimum, 6B 80 a structure it cannot use.
 *
 * The keypad is a Unix stream socket the test connects to. Keys are bytes: '0'-'9', 'E' (OK, "enter"),
 * 'C' (cancel); anything else is ignored. When an entry starts the reader writes "ENTRY current|new|
 * confirm\n" to the connected keypad client, and "DONE XXXX\n" (the status word) when the command ends;
 * before that, "STRUCTURE <hex>\n": the structure the computer sent, for the test to look into.
 * Keys sent before an entry wait in the socket for it. A newer keypad connection replaces the older one.
 *
 * readers.d: DEVICENAME KEYPAD_SOCKET:PORT:MAX_SECONDS. MAX_SECONDS is the reader's own longest wait for a
 * key (a structure's bTimerOut above it is cut to it; 0 means that maximum).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifdhandler.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <reader.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IOCTL(feature) SCARD_CTL_CODE(0x330000 + (feature))
#define MAX_DIGITS 16

static int card_listen = -1, card = -1, keypad_listen = -1, keypad = -1;
static int max_seconds = 30;
static unsigned char atr[MAX_ATR_SIZE];
static size_t atr_len;

static void say(const char *what)
{
    fprintf(stderr, "pinpad reader: %s\n", what);
}

/* ---- the card side (vpcd's protocol) ---- */

static int send_all(int fd, const unsigned char *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t) w;
    }
    return 0;
}

static int recv_all(int fd, unsigned char *b, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t) r;
    }
    return 0;
}

static void card_gone(void)
{
    if (card >= 0)
        close(card);
    card = -1;
    atr_len = 0;
}

/* One frame to the card, in one write; -1 (and the card counts as gone) on failure. */
static int card_send(const unsigned char *b, size_t n)
{
    unsigned char frame[2 + 65535];
    if (card < 0 || n > 65535)
        return -1;
    frame[0] = (unsigned char) (n >> 8);
    frame[1] = (unsigned char) n;
    memcpy(frame + 2, b, n);
    int r = send_all(card, frame, n + 2);
    explicit_bzero(frame, n + 2);
    if (r < 0)
        card_gone();
    return r;
}

/* One frame from the card into b (at most cap bytes); its length, or -1. */
static ssize_t card_recv(unsigned char *b, size_t cap)
{
    unsigned char len[2];
    if (card < 0 || recv_all(card, len, 2) < 0) {
        card_gone();
        return -1;
    }
    size_t n = ((size_t) len[0] << 8) | len[1];
    if (n > cap || recv_all(card, b, n) < 0) {
        card_gone();
        return -1;
    }
    return (ssize_t) n;
}

static int card_control(unsigned char byte)
{
    return card_send(&byte, 1);
}

static int card_atr(void)
{
    unsigned char b[MAX_ATR_SIZE];
    if (card_control(0x04) < 0)
        return -1;
    ssize_t n = card_recv(b, sizeof b);
    if (n <= 0) {
        card_gone();
        return -1;
    }
    memcpy(atr, b, (size_t) n);
    atr_len = (size_t) n;
    return 0;
}

/* A card waiting to connect is inserted now. */
static void card_accept(void)
{
    if (card >= 0 || card_listen < 0)
        return;
    int fd = accept4(card_listen, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    card = fd;
}

static ssize_t card_transmit(const unsigned char *apdu, size_t n, unsigned char *out, size_t cap)
{
    if (card_send(apdu, n) < 0)
        return -1;
    return card_recv(out, cap);
}

/* ---- the keypad ---- */

static void keypad_write(const char *line)
{
    if (keypad >= 0 && send(keypad, line, strlen(line), MSG_NOSIGNAL) < 0) {
        close(keypad);
        keypad = -1;
    }
}

static void keypad_accept(void)
{
    int fd;
    while ((fd = accept4(keypad_listen, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        if (keypad >= 0)
            close(keypad);
        keypad = fd;
    }
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

enum { ENTRY_OK = 0x9000, ENTRY_TIMEOUT = 0x6400, ENTRY_CANCELLED = 0x6401, ENTRY_LENGTH = 0x6403 };

/* Reads one code from the keypad: digits until OK (or, when validation allows it, the maximum length),
 * cancel, or the timeout. Digits past the maximum are ignored, as a reader's keypad does. */
static int keypad_entry(const char *which, int seconds, int min, int max, int condition, char *digits, int *n)
{
    char line[64];
    long deadline;
    *n = 0;
    if (seconds <= 0 || seconds > max_seconds)
        seconds = max_seconds;
    deadline = now_ms() + seconds * 1000L;
    keypad_accept();
    snprintf(line, sizeof line, "ENTRY %s\n", which);
    keypad_write(line);
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            return ENTRY_TIMEOUT;
        struct pollfd p[2] = { { keypad_listen, POLLIN, 0 }, { keypad, POLLIN, 0 } };
        int r = poll(p, keypad >= 0 ? 2 : 1, (int) left);
        if (r < 0 && errno != EINTR)
            return ENTRY_TIMEOUT;
        if (r <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            keypad_accept();
            snprintf(line, sizeof line, "ENTRY %s\n", which);
            keypad_write(line);
            continue;
        }
        if (keypad < 0 || !(p[1].revents & (POLLIN | POLLHUP)))
            continue;
        char key;
        ssize_t got = recv(keypad, &key, 1, 0);
        if (got <= 0) {
            close(keypad);
            keypad = -1;
            continue;
        }
        if (key >= '0' && key <= '9') {
            if (*n < max)
                digits[(*n)++] = key;
            if ((condition & 0x01) && *n == max)
                return ENTRY_OK;
        } else if (key == 'C') {
            return ENTRY_CANCELLED;
        } else if (key == 'E') {
            return *n < min ? ENTRY_LENGTH : ENTRY_OK;
        }
    }
}

/* Tells the keypad client what the computer sent (the structure, hexadecimal): a test checks that the code
 * porteur is not in it. */
static void keypad_structure(const unsigned char *tx, size_t n)
{
    char line[2 * 300 + 16];
    size_t at = (size_t) snprintf(line, sizeof line, "STRUCTURE ");
    for (size_t i = 0; i < n && at + 3 < sizeof line; i++)
        at += (size_t) snprintf(line + at, sizeof line - at, "%02X", tx[i]);
    snprintf(line + at, sizeof line - at, "\n");
    keypad_accept();
    keypad_write(line);
}

/* ---- building the APDU from the structure (CCID PC_to_RDR_Secure) ---- */

static uint16_t le16(const unsigned char *b)
{
    return (uint16_t) (b[0] | (b[1] << 8));
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) | ((uint32_t) b[3] << 24);
}

/* Writes the low `bits` bits of v at bit offset `at` of data (most significant bit first). */
static int put_bits(unsigned char *data, size_t len, size_t at, unsigned bits, unsigned v)
{
    if (at + bits > len * 8)
        return -1;
    for (unsigned i = 0; i < bits; i++) {
        size_t bit = at + i;
        unsigned char mask = (unsigned char) (0x80 >> (bit % 8));
        if ((v >> (bits - 1 - i)) & 1)
            data[bit / 8] |= mask;
        else
            data[bit / 8] &= (unsigned char) ~mask;
    }
    return 0;
}

struct format {
    unsigned char format, block, length;
};

/* Writes a code into the APDU's data at the block starting `offset` bytes in; -1 for a structure that
 * does not fit the template. */
static int place_code(unsigned char *apdu, size_t apdu_len, struct format f, size_t offset, const char *digits,
                      int n)
{
    unsigned unit = (f.format & 0x80) ? 8 : 1, encoding = f.format & 0x03;
    unsigned digit_bits = encoding == 1 ? 4 : 8, length_bits = f.block >> 4, block = f.block & 0x0F;
    if (encoding == 3 || apdu_len < 5)
        return -1;
    unsigned char *data = apdu + 5;
    size_t data_len = apdu_len - 5;
    size_t start = offset * 8 + ((f.format >> 3) & 0x0F) * unit;
    size_t code_bits = (size_t) n * digit_bits;
    size_t block_bits = block ? block * 8u : code_bits;
    if (code_bits > block_bits)
        return -1;
    if (f.format & 0x04)
        start += block_bits - code_bits;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned) (digits[i] - '0');
        if (put_bits(data, data_len, start + (size_t) i * digit_bits, digit_bits, encoding == 2 ? '0' + d : d) < 0)
            return -1;
    }
    if (length_bits) {
        unsigned length_unit = (f.length & 0x10) ? 8 : 1;
        if (put_bits(data, data_len, offset * 8 + (f.length & 0x0F) * length_unit, length_bits, (unsigned) n) < 0)
            return -1;
    }
    return 0;
}

static DWORD answer_sw(PUCHAR rx, DWORD rx_len, LPDWORD returned, unsigned sw)
{
    char line[32];
    snprintf(line, sizeof line, "DONE %04X\n", sw);
    keypad_write(line);
    if (rx_len < 2)
        return IFD_ERROR_INSUFFICIENT_BUFFER;
    rx[0] = (unsigned char) (sw >> 8);
    rx[1] = (unsigned char) sw;
    *returned = 2;
    return IFD_SUCCESS;
}

static DWORD send_built(unsigned char *apdu, size_t n, PUCHAR rx, DWORD rx_len, LPDWORD returned)
{
    unsigned char out[65538];
    ssize_t got = card_transmit(apdu, n, out, sizeof out);
    explicit_bzero(apdu, n);
    if (got < 2 || (DWORD) got > rx_len)
        return IFD_COMMUNICATION_ERROR;
    memcpy(rx, out, (size_t) got);
    *returned = (DWORD) got;
    char line[32];
    snprintf(line, sizeof line, "DONE %02X%02X\n", out[got - 2], out[got - 1]);
    keypad_write(line);
    return IFD_SUCCESS;
}

/* The template (header, Lc, data with the padding) checked against the structure's length fields. */
static unsigned char *template_of(const unsigned char *tx, size_t tx_len, size_t header, size_t *n)
{
    if (tx_len < header)
        return NULL;
    uint32_t data_len = le32(tx + header - 4);
    if (header + data_len != tx_len || data_len < 5 || data_len > 5 + 255 || tx[header + 4] != data_len - 5)
        return NULL;
    unsigned char *apdu = malloc(data_len);
    if (apdu)
        memcpy(apdu, tx + header, data_len);
    *n = data_len;
    return apdu;
}

static DWORD verify_direct(const unsigned char *tx, size_t tx_len, PUCHAR rx, DWORD rx_len, LPDWORD returned)
{
    size_t n;
    char digits[MAX_DIGITS];
    int count;
    keypad_structure(tx, tx_len);
    unsigned char *apdu = template_of(tx, tx_len, 19, &n);
    uint16_t extra = tx_len >= 19 ? le16(tx + 5) : 0;
    int min = extra >> 8, max = extra & 0xFF;
    if (!apdu || min > max || max == 0 || max > MAX_DIGITS) {
        free(apdu);
        return answer_sw(rx, rx_len, returned, 0x6B80);
    }
    struct format f = { tx[2], tx[3], tx[4] };
    int sw = keypad_entry("current", tx[0], min, max, tx[7], digits, &count);
    if (sw == ENTRY_OK && place_code(apdu, n, f, 0, digits, count) < 0)
        sw = 0x6B80;
    explicit_bzero(digits, sizeof digits);
    DWORD r = sw == ENTRY_OK ? send_built(apdu, n, rx, rx_len, returned) : answer_sw(rx, rx_len, returned, (unsigned) sw);
    explicit_bzero(apdu, n);
    free(apdu);
    return r;
}

static DWORD modify_direct(const unsigned char *tx, size_t tx_len, PUCHAR rx, DWORD rx_len, LPDWORD returned)
{
    size_t n;
    char current[MAX_DIGITS], fresh[MAX_DIGITS], again[MAX_DIGITS];
    int n_current = 0, n_fresh = 0, n_again = 0, sw = ENTRY_OK;
    keypad_structure(tx, tx_len);
    unsigned char *apdu = template_of(tx, tx_len, 24, &n);
    uint16_t extra = tx_len >= 24 ? le16(tx + 7) : 0;
    int min = extra >> 8, max = extra & 0xFF;
    if (!apdu || min > max || max == 0 || max > MAX_DIGITS) {
        free(apdu);
        return answer_sw(rx, rx_len, returned, 0x6B80);
    }
    struct format f = { tx[2], tx[3], tx[4] };
    unsigned char confirm = tx[9], condition = tx[10];
    if (confirm & 0x02)
        sw = keypad_entry("current", tx[0], min, max, condition, current, &n_current);
    if (sw == ENTRY_OK)
        sw = keypad_entry("new", tx[0], min, max, condition, fresh, &n_fresh);
    if (sw == ENTRY_OK && (confirm & 0x01)) {
        sw = keypad_entry("confirm", tx[0], min, max, condition, again, &n_again);
        if (sw == ENTRY_OK && (n_again != n_fresh || memcmp(again, fresh, (size_t) n_fresh) != 0))
            sw = 0x6402;
    }
    if (sw == ENTRY_OK && (((confirm & 0x02) && place_code(apdu, n, f, tx[5], current, n_current) < 0) ||
                           place_code(apdu, n, f, tx[6], fresh, n_fresh) < 0))
        sw = 0x6B80;
    explicit_bzero(current, sizeof current);
    explicit_bzero(fresh, sizeof fresh);
    explicit_bzero(again, sizeof again);
    DWORD r = sw == ENTRY_OK ? send_built(apdu, n, rx, rx_len, returned) : answer_sw(rx, rx_len, returned, (unsigned) sw);
    explicit_bzero(apdu, n);
    free(apdu);
    return r;
}

/* ---- the IFD handler ---- */

static int listen_tcp(unsigned short port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 4) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (fd < 0 || strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    unlink(path);
    if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 4) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

RESPONSECODE IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{
    char path[256];
    unsigned port = 0;
    int seconds = 0;
    (void) Lun;
    if (sscanf(DeviceName, "%255[^:]:%u:%d", path, &port, &seconds) != 3 || port == 0 || port > 65535) {
        say("DEVICENAME must be KEYPAD_SOCKET:PORT:MAX_SECONDS");
        return IFD_COMMUNICATION_ERROR;
    }
    if (seconds > 0)
        max_seconds = seconds;
    card_listen = listen_tcp((unsigned short) port);
    keypad_listen = listen_unix(path);
    if (card_listen < 0 || keypad_listen < 0) {
        say("cannot listen for the card or the keypad");
        return IFD_COMMUNICATION_ERROR;
    }
    return IFD_SUCCESS;
}

RESPONSECODE IFDHCreateChannel(DWORD Lun, DWORD Channel)
{
    (void) Lun;
    (void) Channel;
    say("needs DEVICENAME KEYPAD_SOCKET:PORT:MAX_SECONDS");
    return IFD_COMMUNICATION_ERROR;
}

RESPONSECODE IFDHCloseChannel(DWORD Lun)
{
    (void) Lun;
    card_gone();
    if (keypad >= 0)
        close(keypad);
    if (card_listen >= 0)
        close(card_listen);
    if (keypad_listen >= 0)
        close(keypad_listen);
    keypad = card_listen = keypad_listen = -1;
    return IFD_SUCCESS;
}

RESPONSECODE IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{
    (void) Lun;
    switch (Tag) {
    case TAG_IFD_ATR:
        if (atr_len == 0 || *Length < atr_len)
            return IFD_COMMUNICATION_ERROR;
        memcpy(Value, atr, atr_len);
        *Length = (DWORD) atr_len;
        return IFD_SUCCESS;
    case TAG_IFD_SLOTS_NUMBER:
    case TAG_IFD_SIMULTANEOUS_ACCESS:
        *Value = 1;
        *Length = 1;
        return IFD_SUCCESS;
    case TAG_IFD_THREAD_SAFE:
    case TAG_IFD_SLOT_THREAD_SAFE:
        *Value = 0;
        *Length = 1;
        return IFD_SUCCESS;
    default:
        return IFD_ERROR_TAG;
    }
}

RESPONSECODE IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{
    (void) Lun;
    (void) Tag;
    (void) Length;
    (void) Value;
    return IFD_NOT_SUPPORTED;
}

RESPONSECODE IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1, UCHAR PTS2, UCHAR PTS3)
{
    (void) Lun;
    (void) Protocol;
    (void) Flags;
    (void) PTS1;
    (void) PTS2;
    (void) PTS3;
    return IFD_SUCCESS;
}

RESPONSECODE IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{
    unsigned char byte = Action == IFD_POWER_DOWN ? 0x00 : Action == IFD_POWER_UP ? 0x01 : 0x02;
    if (Action != IFD_POWER_DOWN && Action != IFD_POWER_UP && Action != IFD_RESET)
        return IFD_NOT_SUPPORTED;
    if (Action == IFD_POWER_DOWN && card < 0) {
        *AtrLength = 0;
        return IFD_SUCCESS;
    }
    if (card_control(byte) < 0) {
        *AtrLength = 0;
        return IFD_COMMUNICATION_ERROR;
    }
    if (Action == IFD_POWER_DOWN) {
        *AtrLength = 0;
        return IFD_SUCCESS;
    }
    if (card_atr() < 0) {
        *AtrLength = 0;
        return IFD_COMMUNICATION_ERROR;
    }
    return IFDHGetCapabilities(Lun, TAG_IFD_ATR, AtrLength, Atr);
}

RESPONSECODE IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength,
                               PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{
    (void) Lun;
    (void) SendPci;
    ssize_t n = card_transmit(TxBuffer, TxLength, RxBuffer, *RxLength);
    if (n < 0) {
        *RxLength = 0;
        return IFD_COMMUNICATION_ERROR;
    }
    *RxLength = (DWORD) n;
    if (RecvPci)
        RecvPci->Protocol = 1;
    return IFD_SUCCESS;
}

static void tlv(PUCHAR out, DWORD *at, unsigned char tag, uint32_t code)
{
    out[(*at)++] = tag;
    out[(*at)++] = 4;
    uint32_t be = htonl(code);
    memcpy(out + *at, &be, 4);
    *at += 4;
}

RESPONSECODE IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength, PUCHAR RxBuffer,
                         DWORD RxLength, LPDWORD pdwBytesReturned)
{
    (void) Lun;
    *pdwBytesReturned = 0;
    if (dwControlCode == CM_IOCTL_GET_FEATURE_REQUEST) {
        DWORD at = 0;
        if (RxLength < 4 * 6)
            return IFD_ERROR_INSUFFICIENT_BUFFER;
        tlv(RxBuffer, &at, FEATURE_VERIFY_PIN_DIRECT, IOCTL(FEATURE_VERIFY_PIN_DIRECT));
        tlv(RxBuffer, &at, FEATURE_MODIFY_PIN_DIRECT, IOCTL(FEATURE_MODIFY_PIN_DIRECT));
        tlv(RxBuffer, &at, FEATURE_IFD_PIN_PROPERTIES, IOCTL(FEATURE_IFD_PIN_PROPERTIES));
        tlv(RxBuffer, &at, FEATURE_GET_TLV_PROPERTIES, IOCTL(FEATURE_GET_TLV_PROPERTIES));
        *pdwBytesReturned = at;
        return IFD_SUCCESS;
    }
    if (dwControlCode == IOCTL(FEATURE_IFD_PIN_PROPERTIES)) {
        /* wLcdLayout 0 (no display), validation by the OK key, no second timeout. */
        const unsigned char props[4] = { 0x00, 0x00, 0x02, 0x00 };
        if (RxLength < sizeof props)
            return IFD_ERROR_INSUFFICIENT_BUFFER;
        memcpy(RxBuffer, props, sizeof props);
        *pdwBytesReturned = sizeof props;
        return IFD_SUCCESS;
    }
    if (dwControlCode == IOCTL(FEATURE_GET_TLV_PROPERTIES)) {
        static const unsigned char props[] = {
            PCSCv2_PART10_PROPERTY_wLcdLayout, 2, 0x00, 0x00,
            PCSCv2_PART10_PROPERTY_bEntryValidationCondition, 1, 0x02,
            PCSCv2_PART10_PROPERTY_bTimeOut2, 1, 0x00,
            PCSCv2_PART10_PROPERTY_bMinPINSize, 1, 4,
            PCSCv2_PART10_PROPERTY_bMaxPINSize, 1, 8,
            PCSCv2_PART10_PROPERTY_sFirmwareID, 6, 'C', 'P', 'x', 'P', 'a', 'd',
        };
        if (RxLength < sizeof props)
            return IFD_ERROR_INSUFFICIENT_BUFFER;
        memcpy(RxBuffer, props, sizeof props);
        *pdwBytesReturned = sizeof props;
        return IFD_SUCCESS;
    }
    if (dwControlCode == IOCTL(FEATURE_VERIFY_PIN_DIRECT))
        return verify_direct(TxBuffer, TxLength, RxBuffer, RxLength, pdwBytesReturned);
    if (dwControlCode == IOCTL(FEATURE_MODIFY_PIN_DIRECT))
        return modify_direct(TxBuffer, TxLength, RxBuffer, RxLength, pdwBytesReturned);
    return IFD_ERROR_NOT_SUPPORTED;
}

RESPONSECODE IFDHICCPresence(DWORD Lun)
{
    (void) Lun;
    card_accept();
    if (card < 0)
        return IFD_ICC_NOT_PRESENT;
    return card_atr() == 0 ? IFD_ICC_PRESENT : IFD_ICC_NOT_PRESENT;
}
