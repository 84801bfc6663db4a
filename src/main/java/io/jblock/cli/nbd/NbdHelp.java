package io.jblock.cli.nbd;

import java.io.PrintStream;

/** {@code --help} for the nbd tool: qemu-nbd 7.2's options, in jblock's words. */
final class NbdHelp {
    private NbdHelp() {
    }

    static void print(String prog, PrintStream out) {
        out.print("""
                Usage: %1$s [OPTIONS] FILE
                  or:  %1$s -L [OPTIONS]
                Serve a disk image over NBD (compatible with qemu-nbd 7.2)

                  -h, --help                display this help and exit
                  -V, --version             output version information and exit

                Connection properties:
                  -p, --port=PORT           port to listen on (default `10809')
                  -b, --bind=IFACE          interface to bind to (default `0.0.0.0')
                  -k, --socket=PATH         path to the unix socket
                  -e, --shared=NUM          device can be shared by NUM clients (default '1')
                  -t, --persistent          don't exit on the last connection
                  -v, --verbose             display extra debugging information
                  -x, --export-name=NAME    expose export by name (default is empty string)
                  -D, --description=TEXT    export a human-readable description

                Exposing part of the image:
                  -o, --offset=OFFSET       offset into the image
                  -A, --allocation-depth    expose the allocation depth
                  -B, --bitmap=NAME         expose a persistent dirty bitmap (not supported yet)

                General purpose options:
                  -L, --list                list exports available from another NBD server
                  -T, --trace [...]         accepted and ignored
                  --fork                    fork off the server process and exit the parent
                                            once the server is running
                  --pid-file=PATH           store the server's process ID in the given file

                Block device options:
                  -f, --format=FORMAT       set image format (raw, ...)
                  -r, --read-only           export read-only
                  -s, --snapshot            discard writes at exit (temporary overlay)
                  -l, --load-snapshot=SNAPSHOT_PARAM
                                            export an internal snapshot read-only (needs qcow2)
                  -n, --nocache             disable host cache
                      --cache=MODE          set cache mode used to access the disk image, the
                                            valid options are: 'none', 'writeback' (default),
                                            'writethrough', 'directsync' and 'unsafe'
                      --aio=MODE            set AIO mode (native, io_uring or threads)
                      --discard=MODE        set discard mode (ignore, unmap)
                      --detect-zeroes=MODE  set detect-zeroes mode (off, on, unmap)
                      --image-opts          treat FILE as a full set of image options
                """.formatted(prog));
    }
}
