/* winscard.dll for Wine, test runs only: the Smart Card service stopped, as Windows reports it. Every
 * entry point the pcsc crate imports answers SCARD_E_NO_SERVICE (0x8010001D), the code WinSCard returns
 * while SCardSvr is not running. (Wine 8's own winscard.dll is a stub that pretends a context and then
 * fails every call, which no Windows does.) Built by tests/windows/run.sh with mingw-w64; never shipped. */
#define WIN32_LEAN_AND_MEAN /* no winscard.h: these are the definitions */
#include <windows.h>

#define NO_SERVICE ((LONG)0x8010001DL)

LONG WINAPI SCardEstablishContext(DWORD scope, const void *r1, const void *r2, ULONG_PTR *context)
{
    (void)scope; (void)r1; (void)r2;
    if (context) *context = 0;
    return NO_SERVICE;
}
LONG WINAPI SCardReleaseContext(ULONG_PTR c) { (void)c; return NO_SERVICE; }
LONG WINAPI SCardIsValidContext(ULONG_PTR c) { (void)c; return NO_SERVICE; }
LONG WINAPI SCardCancel(ULONG_PTR c) { (void)c; return NO_SERVICE; }
LONG WINAPI SCardListReadersA(ULONG_PTR c, const char *g, char *r, DWORD *n) { (void)c; (void)g; (void)r; (void)n; return NO_SERVICE; }
LONG WINAPI SCardGetStatusChangeA(ULONG_PTR c, DWORD t, void *s, DWORD n) { (void)c; (void)t; (void)s; (void)n; return NO_SERVICE; }
LONG WINAPI SCardConnectA(ULONG_PTR c, const char *r, DWORD m, DWORD p, ULONG_PTR *h, DWORD *a)
{
    (void)c; (void)r; (void)m; (void)p; (void)h; (void)a;
    return NO_SERVICE;
}
LONG WINAPI SCardReconnect(ULONG_PTR h, DWORD m, DWORD p, DWORD i, DWORD *a) { (void)h; (void)m; (void)p; (void)i; (void)a; return NO_SERVICE; }
LONG WINAPI SCardDisconnect(ULONG_PTR h, DWORD d) { (void)h; (void)d; return NO_SERVICE; }
LONG WINAPI SCardBeginTransaction(ULONG_PTR h) { (void)h; return NO_SERVICE; }
LONG WINAPI SCardEndTransaction(ULONG_PTR h, DWORD d) { (void)h; (void)d; return NO_SERVICE; }
LONG WINAPI SCardStatusA(ULONG_PTR h, char *r, DWORD *rl, DWORD *s, DWORD *p, BYTE *atr, DWORD *al)
{
    (void)h; (void)r; (void)rl; (void)s; (void)p; (void)atr; (void)al;
    return NO_SERVICE;
}
LONG WINAPI SCardTransmit(ULONG_PTR h, const void *sp, const BYTE *in, DWORD il, void *rp, BYTE *out, DWORD *ol)
{
    (void)h; (void)sp; (void)in; (void)il; (void)rp; (void)out; (void)ol;
    return NO_SERVICE;
}
LONG WINAPI SCardControl(ULONG_PTR h, DWORD code, const void *in, DWORD il, void *out, DWORD ol, DWORD *rl)
{
    (void)h; (void)code; (void)in; (void)il; (void)out; (void)ol; (void)rl;
    return NO_SERVICE;
}
LONG WINAPI SCardGetAttrib(ULONG_PTR h, DWORD id, BYTE *a, DWORD *l) { (void)h; (void)id; (void)a; (void)l; return NO_SERVICE; }
LONG WINAPI SCardSetAttrib(ULONG_PTR h, DWORD id, const BYTE *a, DWORD l) { (void)h; (void)id; (void)a; (void)l; return NO_SERVICE; }
