/* Wine 8 (Debian bookworm) has no bcryptprimitives.dll, from which Rust's
 * standard library takes random bytes (ProcessPrng). CI runs the Windows
 * unit tests under Wine with this stand-in beside the test binaries; it
 * fills the buffer from RtlGenRandom (advapi32's SystemFunction036). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000 ? 0x10000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
