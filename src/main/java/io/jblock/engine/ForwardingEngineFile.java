package io.jblock.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

/** An EngineFile that passes every call to another: the base of counting and fault-injecting wrappers. */
public class ForwardingEngineFile implements EngineFile {
    protected final EngineFile delegate;

    public ForwardingEngineFile(EngineFile delegate) {
        this.delegate = delegate;
    }

    @Override
    public int read(ByteBuffer dst, long pos) throws IOException {
        return delegate.read(dst, pos);
    }

    @Override
    public int write(ByteBuffer src, long pos) throws IOException {
        return delegate.write(src, pos);
    }

    @Override
    public void datasync() throws IOException {
        delegate.datasync();
    }

    @Override
    public long size() throws IOException {
        return delegate.size();
    }

    @Override
    public void truncate(long size) throws IOException {
        delegate.truncate(size);
    }

    @Override
    public boolean punchHole(long offset, long length) throws IOException {
        return delegate.punchHole(offset, length);
    }

    @Override
    public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
        return delegate.zeroRange(offset, length, keepSize);
    }

    @Override
    public boolean allocate(long offset, long length) throws IOException {
        return delegate.allocate(offset, length);
    }

    @Override
    public long seekData(long pos) throws IOException {
        return delegate.seekData(pos);
    }

    @Override
    public long seekHole(long pos) throws IOException {
        return delegate.seekHole(pos);
    }

    @Override
    public void startWriteback() throws IOException {
        delegate.startWriteback();
    }

    @Override
    public long allocatedSize() throws IOException {
        return delegate.allocatedSize();
    }

    @Override
    public int alignment() {
        return delegate.alignment();
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }
}
