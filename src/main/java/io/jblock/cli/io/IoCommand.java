package io.jblock.cli.io;

/**
 * One qemu-io command: its names, how many arguments it takes, what it needs
 * (an open image, write permission), its help, and what it does.
 *
 * @param name     the name, as listed by {@code help}
 * @param altName  the one-letter alias, or null
 * @param argMin   fewest arguments; -1 for no check
 * @param argMax   most arguments; -1 for no limit
 * @param global   runs whatever the state ({@code help}, {@code quit})
 * @param noFileOk runs without an open image ({@code open}, {@code sleep})
 * @param writes   needs write permission on the image, checked before the arguments are parsed
 * @param args     the argument synopsis, or null
 * @param oneline  the one-line description
 * @param help     the extended help, or null
 * @param action   what it does
 */
record IoCommand(String name, String altName, int argMin, int argMax, boolean global, boolean noFileOk,
                 boolean writes, String args, String oneline, String help, Action action) {

    /** A command's body; returns 0 on success, non-zero when the command failed. */
    @FunctionalInterface
    interface Action {
        int run(IoSession session, String[] argv);
    }

    /** What qemu-io prints when a command's options or operands are wrong; counts as a failure. */
    int usage(IoSession s) {
        s.out.print(name + " " + args + " -- " + oneline + "\n");
        return -1;
    }
}
