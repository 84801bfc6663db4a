package io.jblock.cli;

import java.io.InputStream;
import java.io.PrintStream;

/**
 * One of jblock's command-line tools. Tools run in-process with their own
 * streams, so tests can run them next to the QEMU tool they replace and
 * compare output and exit status.
 */
public interface Tool {
    /**
     * Runs the tool.
     *
     * @param prog the name to use in messages: "qemu-io" when started through
     *             a link of that name, "jblock io" otherwise
     * @return the exit status
     */
    int run(String prog, String[] args, InputStream in, PrintStream out, PrintStream err);
}
