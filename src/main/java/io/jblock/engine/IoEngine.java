package io.jblock.engine;

import java.io.IOException;
import java.nio.file.Path;

/**
 * How a file node does its I/O. The engine decides how a request's thread
 * waits: {@code threads} does positional FileChannel I/O (the JDK compensates
 * for the blocked carrier), {@code io_uring} submits and parks the virtual
 * thread until the completion arrives.
 */
public interface IoEngine {
    /** The name users select it by ({@code aio=threads}). */
    String name();

    /**
     * Opens a regular file; anything else fails with {@link NotRegularFileException}.
     *
     * @param readOnly open O_RDONLY rather than O_RDWR
     * @param direct   open with O_DIRECT; the returned file's {@link EngineFile#alignment()} says what it needs
     */
    EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException;

    /**
     * Opens a character or block device, as QEMU's host_device protocol
     * does; anything else fails with {@link NotDeviceException}. Engines
     * that cannot drive devices say so.
     */
    default EngineFile openDevice(Path path, boolean readOnly, boolean direct) throws IOException {
        throw new IOException("the '" + name() + "' engine cannot open devices");
    }
}
