package io.jblock.engine;

import java.nio.file.FileSystemException;

/** The path names a regular file, a directory or a pipe where a character or block device was asked for. */
public final class NotDeviceException extends FileSystemException {
    public NotDeviceException(String path) {
        super(path, null, "not a character or block device");
    }
}
