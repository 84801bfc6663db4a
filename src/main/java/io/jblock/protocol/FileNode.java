package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.engine.EngineFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The file protocol: a host file through an I/O engine.
 *
 * <p>Durability rule (fsyncgate): after one failed fdatasync the kernel may
 * have dropped the dirty pages and cleared the error, so a later fdatasync
 * could succeed without the data being on disk. Once a datasync fails, every
 * later flush of this file fails too.
 */
public final class FileNode extends BlockNode {
    private final Path path;
    private final EngineFile file;
    private volatile boolean pageCacheInconsistent;

    public FileNode(NodeSettings settings, Path path, EngineFile file) {
        super("file", settings);
        this.path = path;
        this.file = file;
    }

    public Path path() {
        return path;
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, false, true, file.alignment(), Capabilities.MAX_TRANSFER);
    }

    @Override
    public long length() throws BlockException {
        try {
            return file.size();
        } catch (IOException e) {
            throw BlockException.io("Could not get the size of '" + path + "'", e);
        }
    }

    @Override
    protected boolean hasMedium() {
        return true;
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        int start = dst.position();
        ByteBuffer view = dst.duplicate();
        try {
            long pos = offset;
            while (view.hasRemaining()) {
                int n = file.read(view, pos);
                if (n < 0) {
                    // Past the end of the file reads as zeroes, as QEMU's file driver does.
                    while (view.hasRemaining()) {
                        view.put((byte) 0);
                    }
                    break;
                }
                pos += n;
            }
        } catch (IOException e) {
            throw BlockException.io("read of '" + path + "' at offset " + offset + ", length "
                    + (dst.limit() - start) + " failed", e);
        }
        dst.position(dst.limit());
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        ByteBuffer view = src.duplicate();
        try {
            long pos = offset;
            while (view.hasRemaining()) {
                pos += file.write(view, pos);
            }
        } catch (IOException e) {
            throw BlockException.io("write of '" + path + "' at offset " + offset + ", length "
                    + src.remaining() + " failed", e);
        }
        src.position(src.limit());
    }

    @Override
    public void flushToDisk() throws BlockException {
        if (pageCacheInconsistent) {
            throw new BlockException(Errno.EIO, "an earlier fdatasync of '" + path
                    + "' failed; its data may be lost, so every later flush fails too");
        }
        try {
            file.datasync();
        } catch (IOException e) {
            pageCacheInconsistent = true;
            throw BlockException.io("fdatasync of '" + path + "' failed", e);
        }
    }

    @Override
    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        if (prealloc != null && prealloc != Prealloc.OFF) {
            throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode '"
                    + prealloc.canonicalName() + "'");
        }
        try {
            file.truncate(length);
        } catch (IOException e) {
            throw BlockException.io("Failed to resize '" + path + "'", e);
        }
    }

    @Override
    protected BlockStatus doBlockStatus(long offset, long length) {
        return new BlockStatus(length, BlockStatus.DATA | BlockStatus.ALLOCATED, 1);
    }

    @Override
    public long allocatedSize() throws BlockException {
        try {
            return file.allocatedSize();
        } catch (IOException e) {
            throw BlockException.io("stat of '" + path + "' failed", e);
        }
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple("file");
    }

    @Override
    public void close() throws BlockException {
        try {
            file.close();
        } catch (IOException e) {
            throw BlockException.io("close of '" + path + "' failed", e);
        }
    }
}
