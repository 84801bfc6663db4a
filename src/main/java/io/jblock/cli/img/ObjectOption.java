package io.jblock.cli.img;

/**
 * {@code --object}: QEMU's user-creatable objects (secrets for encrypted
 * images, throttle groups, TLS credentials). jblock has none yet, so every
 * command that takes the option accepts it on the command line and then
 * refuses it by name, rather than failing as an unknown option.
 */
final class ObjectOption {
    private ObjectOption() {
    }

    static ImgExit refuse(ImgContext ctx, String definition) {
        return ctx.fail("--object is not available yet in this version of jblock (given '" + definition + "')");
    }
}
