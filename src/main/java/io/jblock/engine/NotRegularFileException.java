package io.jblock.engine;

import java.nio.file.FileSystemException;

/** The path names a directory, a device or a pipe: the file protocol works on regular files only. */
public final class NotRegularFileException extends FileSystemException {
    public NotRegularFileException(String path) {
        super(path, null, "not a regular file");
    }
}
