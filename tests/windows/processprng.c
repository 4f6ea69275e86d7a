/* bcryptprimitives.dll for Wine 8, test runs only: Rust's standard library (1.78 and later) draws its
 * random numbers from ProcessPrng, which Windows 10 and later export from bcryptprimitives.dll and Wine 8
 * does not. This one exports it over BCryptGenRandom (the system RNG), which Wine 8 implements.
 * Built by tests/windows/run.sh with mingw-w64; never shipped. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
