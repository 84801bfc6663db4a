package io.jblock.engine;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code aio=io_uring} (and {@code aio=native}, which jblock serves with
 * io_uring too): the data path of every file goes through an io_uring of its
 * own (see {@link IoUringFile}, {@link IoUringRing}), called through FFM;
 * no JNI, no native library.
 *
 * <p>Opening is the threads engine's (the same checks, errors and O_DIRECT
 * alignment probe), then a ring of {@link #RING_ENTRIES} is set up for the
 * file; closing the file stops its completion thread and unmaps its ring.
 */
public final class IoUringEngine implements IoEngine {
    /** Submission queue entries per file: the most requests in flight on one file, as QEMU's MAX_ENTRIES. */
    public static final int RING_ENTRIES = 128;

    private static final IoUringEngine INSTANCE = new IoUringEngine();

    /** The outcome of setting up (and closing) one small ring, once per process. */
    private static final class Probe {
        static final ErrnoException FAILURE = probe();

        private static ErrnoException probe() {
            try (IoUring ignored = IoUring.create(1)) {
                return null;
            } catch (ErrnoException e) {
                return e;
            }
        }
    }

    private IoUringEngine() {
    }

    /**
     * The engine, if this kernel lets the process use io_uring; otherwise the
     * io_uring_setup failure (ENOSYS: no io_uring; EPERM: forbidden by seccomp
     * or kernel.io_uring_disabled).
     */
    public static IoUringEngine instance() throws ErrnoException {
        if (Probe.FAILURE != null) {
            throw Probe.FAILURE;
        }
        return INSTANCE;
    }

    @Override
    public String name() {
        return "io_uring";
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        return withRing(ThreadsEngine.INSTANCE.open(path, readOnly, direct), path);
    }

    @Override
    public EngineFile openDevice(Path path, boolean readOnly, boolean direct) throws IOException {
        return withRing(ThreadsEngine.INSTANCE.openDevice(path, readOnly, direct), path);
    }

    private static EngineFile withRing(EngineFile opened, Path path) throws IOException {
        ThreadsEngine.ChannelFile file = (ThreadsEngine.ChannelFile) opened;
        try {
            return new IoUringFile(file, IoUringRing.open(RING_ENTRIES, path.toString()));
        } catch (ErrnoException | RuntimeException e) {
            file.close();
            throw e;
        }
    }
}
