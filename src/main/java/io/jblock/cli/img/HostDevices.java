package io.jblock.cli.img;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Character and block devices, which QEMU opens through its host_device
 * protocol rather than the file protocol: they need not be regular files,
 * and they cannot be created or grown.
 */
final class HostDevices {
    private static final int S_IFMT = 0170000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFBLK = 0060000;

    private HostDevices() {
    }

    static boolean isDevice(String path) {
        try {
            int mode = (Integer) Files.getAttribute(Path.of(path), "unix:mode");
            int type = mode & S_IFMT;
            return type == S_IFCHR || type == S_IFBLK;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
