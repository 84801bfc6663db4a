package io.jblock.cli.io;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;

import java.util.LinkedHashMap;
import java.util.function.Consumer;

/**
 * Opens the image the way qemu-io does: its flags (read-only, snapshot,
 * cache, discard, aio, force-share) on top of the node options, with
 * qemu-io's own defaults: writethrough and discard=unmap.
 */
final class ImageOpener {
    /** Everything one open needs; kept so {@code reopen} can open again with a few settings changed. */
    static final class Request {
        String filename;
        LinkedHashMap<String, String> options = new LinkedHashMap<>();
        boolean readOnly;
        boolean snapshot;
        CacheOptions cache = CacheMode.WRITETHROUGH.options();
        DiscardMode discard = DiscardMode.UNMAP;
        AioMode aio = AioMode.THREADS;
        boolean forceShare;
        boolean copyOnRead;

        Request copy() {
            Request r = new Request();
            r.filename = filename;
            r.options = new LinkedHashMap<>(options);
            r.readOnly = readOnly;
            r.snapshot = snapshot;
            r.cache = cache;
            r.discard = discard;
            r.aio = aio;
            r.forceShare = forceShare;
            r.copyOnRead = copyOnRead;
            return r;
        }
    }

    /** A failure qemu-io reports without "can't open device": the request itself was inconsistent. */
    static final class RequestException extends Exception {
        RequestException(String message) {
            super(message, null, false, false);
        }
    }

    private ImageOpener() {
    }

    static Drive open(Request r, Consumer<String> warnings) throws BlockException, RequestException {
        NodeOptions o = new NodeOptions(r.options);
        if (r.forceShare) {
            String given = o.peek("force-share");
            if (given != null && !given.equals("on")) {
                throw new RequestException("-U conflicts with image options");
            }
            o.put("force-share", "on");
        }
        boolean readOnly = r.readOnly;
        if (o.has("read-only") && NodeOptions.parseBool("read-only", o.peek("read-only"))) {
            if (!r.readOnly) {
                // qemu-io asked for a writable image and the options made the node read-only.
                throw new BlockException(Errno.EPERM, "Block node is read-only");
            }
            readOnly = true;
        }
        if (r.copyOnRead && readOnly) {
            throw new BlockException(Errno.EINVAL, "Can't use copy-on-read on read-only device");
        }
        // Under -s the image itself is opened read-only, so it may be shared.
        if (o.has("force-share") && NodeOptions.parseBool("force-share", o.peek("force-share")) && !readOnly
                && !r.snapshot) {
            throw new BlockException(Errno.EINVAL, "force-share=on can only be used with read-only images");
        }
        DriveConfig c = new DriveConfig();
        c.filename = r.filename;
        c.options = o;
        c.cache = r.cache;
        c.readOnly = r.readOnly;
        // The drive opener opens the image read-only under a temporary overlay that takes the writes.
        c.snapshot = r.snapshot;
        c.discard = r.discard;
        c.aio = r.aio;
        c.warnings = warnings;
        // aio=native and aio=io_uring fail with the engine's own error until jblock has those engines.
        return DriveOpener.standard().open(c);
    }
}
