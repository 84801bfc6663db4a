package io.jblock.block;

/**
 * The POSIX error numbers the block layer reports, with the text glibc's
 * {@code strerror} gives for them: qemu-io prints that text ("write failed:
 * Input/output error"), and NBD maps the numbers onto its own error codes.
 */
public enum Errno {
    EPERM(1, "Operation not permitted"),
    ENOENT(2, "No such file or directory"),
    EIO(5, "Input/output error"),
    EBADF(9, "Bad file descriptor"),
    EAGAIN(11, "Resource temporarily unavailable"),
    ENOMEM(12, "Cannot allocate memory"),
    EACCES(13, "Permission denied"),
    EBUSY(16, "Device or resource busy"),
    EEXIST(17, "File exists"),
    ENODEV(19, "No such device"),
    EISDIR(21, "Is a directory"),
    EINVAL(22, "Invalid argument"),
    EFBIG(27, "File too large"),
    ENOSPC(28, "No space left on device"),
    EROFS(30, "Read-only file system"),
    ERANGE(34, "Numerical result out of range"),
    ENOTSUP(95, "Operation not supported"),
    EOVERFLOW(75, "Value too large for defined data type"),
    ESHUTDOWN(108, "Cannot send after transport endpoint shutdown"),
    ECANCELED(125, "Operation canceled"),
    ENOMEDIUM(123, "No medium found");

    private final int number;
    private final String text;

    Errno(int number, String text) {
        this.number = number;
        this.text = text;
    }

    /** The Linux errno value. */
    public int number() {
        return number;
    }

    /** What {@code strerror(3)} says for this error on glibc. */
    public String text() {
        return text;
    }

    /** The errno with this number, or EIO when the number is not one the block layer uses. */
    public static Errno of(int number) {
        for (Errno e : values()) {
            if (e.number == number) {
                return e;
            }
        }
        return EIO;
    }
}
