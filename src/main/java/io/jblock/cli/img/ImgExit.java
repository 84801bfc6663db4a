package io.jblock.cli.img;

/**
 * Ends a command with an exit status, as qemu-img's exit() calls do, once
 * the message has been printed. Lets deep helpers (option parsing, size
 * parsing) stop the command without threading a status back by hand.
 */
final class ImgExit extends Exception {
    private final int status;

    ImgExit(int status) {
        super(null, null, false, false);
        this.status = status;
    }

    int status() {
        return status;
    }
}
