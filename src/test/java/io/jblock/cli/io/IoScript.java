package io.jblock.cli.io;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One qemu-io run to compare: the arguments (with {@link QemuIoOracle#IMG}
 * for the image), the image's size and the qemu-io commands that prepare it,
 * and what standard input gets.
 */
record IoScript(String name, String size, List<String> setup, List<String> args, String stdin) {
    static IoScript of(String name, String... args) {
        return new IoScript(name, "1M", List.of(), Arrays.asList(args), null);
    }

    /** The usual form: {@code -f raw IMG -c CMD...}. */
    static IoScript raw(String name, String... commands) {
        List<String> args = new ArrayList<>(List.of("-f", "raw", QemuIoOracle.IMG));
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        return new IoScript(name, "1M", List.of(), args, null);
    }

    IoScript size(String newSize) {
        return new IoScript(name, newSize, setup, args, stdin);
    }

    IoScript setup(String... commands) {
        return new IoScript(name, size, List.of(commands), args, stdin);
    }

    IoScript stdin(String text) {
        return new IoScript(name, size, setup, args, text);
    }

    @Override
    public String toString() {
        return name;
    }
}
