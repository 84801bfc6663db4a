package io.jblock.cli.io;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.engine.ThreadsEngine;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;

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
        static {
            initCacheClasses();
        }

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

    /**
     * CacheOptions and CacheMode refer to each other in their static
     * initialisers; whichever is touched first must be CacheOptions, or
     * CacheMode's table is built while CacheOptions.WRITEBACK reads a null
     * CacheMode.WRITEBACK (a bug outside this package, reported; worked around here).
     */
    static void initCacheClasses() {
        java.util.Objects.requireNonNull(CacheOptions.WRITEBACK);
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
        probeFileChild(r.filename, o);
        if (o.has("force-share") && NodeOptions.parseBool("force-share", o.peek("force-share")) && !readOnly) {
            throw new BlockException(Errno.EINVAL, "force-share=on can only be used with read-only images");
        }
        DriveConfig c = new DriveConfig();
        c.filename = r.filename;
        if (c.filename != null && c.filename.startsWith("file:")) {
            // "file:" names the protocol. The graph opener strips it only for the probe, so with a
            // format given it reached the file driver as part of the name, and the probing warning
            // named it (reported); QEMU strips it everywhere.
            c.filename = c.filename.substring("file:".length());
        }
        c.options = o;
        c.cache = r.cache;
        // Under -s the image is only read: the overlay takes the writes.
        c.readOnly = r.readOnly || r.snapshot;
        c.discard = r.discard;
        c.aio = r.aio;
        c.warnings = warnings;
        Drive drive = opener().open(c);
        if (!r.snapshot) {
            return drive;
        }
        BlockNode base = drive.root();
        NodeSettings settings = new NodeSettings(NodeSettings.autoName(), r.readOnly, r.cache.direct(),
                r.cache.noFlush(), r.discard);
        return new Drive("", new SnapshotOverlay(settings, base), r.cache.writeback(), r.readOnly,
                DetectZeroes.OFF);
    }

    /**
     * Options that name only the file ({@code file.filename=x}, perhaps with
     * {@code file.driver=file}) and no format: QEMU probes the format of that
     * file, as it does for a plain file name, so they are turned into one.
     */
    private static void probeFileChild(String filename, NodeOptions o) {
        if (filename != null || o.has("driver") || !o.has("file.filename")) {
            return;
        }
        boolean onlyFile = o.remaining().keySet().stream().filter(k -> k.startsWith("file."))
                .allMatch(k -> k.equals("file.filename") || (k.equals("file.driver")
                        && o.peek("file.driver").equals("file")));
        if (onlyFile) {
            o.take("file.driver");
            o.put("filename", o.take("file.filename").orElseThrow());
        }
    }

    /**
     * The standard opener, except that aio=native and aio=io_uring run on the
     * threads engine while those engines are not in jblock yet: the choice
     * changes how requests wait, never what they do, and qemu-io accepts both.
     */
    private static DriveOpener opener() {
        return new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> {
            try {
                return GraphOpener.standardEngine(mode);
            } catch (BlockException e) {
                if (e.errno() == Errno.ENOTSUP) {
                    return ThreadsEngine.INSTANCE;
                }
                throw e;
            }
        }));
    }
}
