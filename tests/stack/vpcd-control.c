/* The vpcd reader driver as the test stack loads it: every IFD handler function forwarded to this entry's
 * copy of vpcd (libvpcdwrap-X.so opens libifdvpcd-X.so next to it), except IFDHControl, answered here as a
 * CCID reader without PIN pad answers: the feature request succeeds with no feature, any other control
 * code is not supported.
 *
 * Why: the agent asks each card's reader for its PIN-pad features at every login. vpcd answers that
 * request IFD_ERROR_NOT_SUPPORTED, and pcscd 1.9.9 (Debian 12) takes that answer badly: after a few such
 * requests it segfaults (in the dynamic loader, or calling into a vpcd copy through an unrelocated GOT
 * entry), taking every reader with it. Answered with success and no feature, it does not.
 * Built by stack.sh prepare (gcc); tests/tests/pinpad_login.rs, agent_api.rs and every login exercise it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <ifdhandler.h>
#include <reader.h>

static void *real;

static void *sym(const char *name)
{
    if (!real) {
        Dl_info info;
        char path[4096];
        if (!dladdr((void *) sym, &info) || !info.dli_fname)
            return NULL;
        snprintf(path, sizeof path, "%s", info.dli_fname);
        char *at = strstr(path, "libvpcdwrap-");
        if (!at)
            return NULL;
        char rest[4096];
        snprintf(rest, sizeof rest, "%s", at + strlen("libvpcdwrap-"));
        snprintf(at, sizeof path - (size_t) (at - path), "libifdvpcd-%s", rest);
        real = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!real)
            return NULL;
    }
    return dlsym(real, name);
}

RESPONSECODE IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{ return ((RESPONSECODE (*)(DWORD, LPSTR)) sym("IFDHCreateChannelByName"))(Lun, DeviceName); }
RESPONSECODE IFDHCreateChannel(DWORD Lun, DWORD Channel)
{ return ((RESPONSECODE (*)(DWORD, DWORD)) sym("IFDHCreateChannel"))(Lun, Channel); }
RESPONSECODE IFDHCloseChannel(DWORD Lun)
{ return ((RESPONSECODE (*)(DWORD)) sym("IFDHCloseChannel"))(Lun); }
RESPONSECODE IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{ return ((RESPONSECODE (*)(DWORD, DWORD, PDWORD, PUCHAR)) sym("IFDHGetCapabilities"))(Lun, Tag, Length, Value); }
RESPONSECODE IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{ return ((RESPONSECODE (*)(DWORD, DWORD, DWORD, PUCHAR)) sym("IFDHSetCapabilities"))(Lun, Tag, Length, Value); }
RESPONSECODE IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1, UCHAR PTS2, UCHAR PTS3)
{ return ((RESPONSECODE (*)(DWORD, DWORD, UCHAR, UCHAR, UCHAR, UCHAR)) sym("IFDHSetProtocolParameters"))(Lun, Protocol, Flags, PTS1, PTS2, PTS3); }
RESPONSECODE IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{ return ((RESPONSECODE (*)(DWORD, DWORD, PUCHAR, PDWORD)) sym("IFDHPowerICC"))(Lun, Action, Atr, AtrLength); }
RESPONSECODE IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength, PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{ return ((RESPONSECODE (*)(DWORD, SCARD_IO_HEADER, PUCHAR, DWORD, PUCHAR, PDWORD, PSCARD_IO_HEADER)) sym("IFDHTransmitToICC"))(Lun, SendPci, TxBuffer, TxLength, RxBuffer, RxLength, RecvPci); }
RESPONSECODE IFDHICCPresence(DWORD Lun)
{ return ((RESPONSECODE (*)(DWORD)) sym("IFDHICCPresence"))(Lun); }
RESPONSECODE IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength, PUCHAR RxBuffer, DWORD RxLength, LPDWORD pdwBytesReturned)
{
    (void) Lun; (void) dwControlCode; (void) TxBuffer; (void) TxLength; (void) RxBuffer; (void) RxLength;
    if (pdwBytesReturned)
        *pdwBytesReturned = 0;
    return dwControlCode == CM_IOCTL_GET_FEATURE_REQUEST ? IFD_SUCCESS : IFD_ERROR_NOT_SUPPORTED;
}
