# Runs a command where io_uring_setup fails, as under a container's seccomp
# profile: a seccomp filter makes syscall 425 (io_uring_setup, on x86_64 and
# aarch64 alike) return the errno given in $ERRNO (default ENOSYS) and lets
# everything else through. Used by IoUringUnavailableTest.
import ctypes, os, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7fff0000
NR_IO_URING_SETUP = 425

def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)

errno = int(os.environ.get("ERRNO", "38"))
prog = b"".join([
    insn(0x20, 0, 0, 0),                      # BPF_LD|BPF_W|BPF_ABS: seccomp_data.nr
    insn(0x15, 0, 1, NR_IO_URING_SETUP),      # BPF_JMP|BPF_JEQ|BPF_K
    insn(0x06, 0, 0, SECCOMP_RET_ERRNO | errno),
    insn(0x06, 0, 0, SECCOMP_RET_ALLOW),
])

class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

fprog = SockFprog(len(prog) // 8, prog)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NO_NEW_PRIVS) failed: errno %d" % ctypes.get_errno())
if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
    sys.exit("prctl(PR_SET_SECCOMP) failed: errno %d" % ctypes.get_errno())
os.execvp(sys.argv[1], sys.argv[1:])
