package io.jblock.cli.img;

import io.jblock.cli.Getopt;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.List;

/**
 * qemu-img's option loop around getopt_long: the option string starts with
 * ':' so getopt stays silent, and qemu-img prints its own two messages,
 * naming {@code argv[optind - 1]}: "missing argument for option '-f'" and
 * "unrecognized option '-x'".
 *
 * <p>{@code argv[optind - 1]} is read from glibc's argument array as it is
 * at that moment, half permuted. It is the element just finished (the
 * option, or its separate argument) — or, when the bad character sits in the
 * middle of a cluster ({@code -xq}), the element before it in that array:
 * the last operand skipped so far (glibc has moved operands right behind the
 * options already parsed), else the previous argument, else the command
 * name. {@link Getopt} permutes only at the end, so this class keeps track
 * of which elements were operands to name the same one.
 */
final class CommandLine {
    private final ImgContext ctx;
    private final String[] argv;
    private final Getopt getopt;
    /** What each element of argv (without argv[0]) turned out to be. */
    private final Kind[] kinds;
    private String lastOperand;

    private enum Kind { UNSEEN, OPTION, ARGUMENT, OPERAND }

    /**
     * @param argv      the command's arguments, its name first
     * @param shortOpts getopt's option string without the leading ':' (added here)
     */
    CommandLine(ImgContext ctx, String[] argv, String shortOpts, Getopt.LongOpt... longOpts) {
        this.ctx = ctx;
        this.argv = argv;
        String[] rest = java.util.Arrays.copyOfRange(argv, 1, argv.length);
        String opts = shortOpts.startsWith("+") ? "+:" + shortOpts.substring(1) : ":" + shortOpts;
        this.getopt = new Getopt(ctx.prog(), rest, opts, longOpts, new PrintStream(OutputStream.nullOutputStream()));
        this.kinds = new Kind[rest.length];
        java.util.Arrays.fill(kinds, Kind.UNSEEN);
    }

    /** A long option that takes no argument. */
    static Getopt.LongOpt flag(String name, int val) {
        return new Getopt.LongOpt(name, Getopt.Arg.NONE, val);
    }

    /** A long option that needs an argument. */
    static Getopt.LongOpt withArgument(String name, int val) {
        return new Getopt.LongOpt(name, Getopt.Arg.REQUIRED, val);
    }

    /**
     * The next option, -1 at the end. A missing argument or an unknown option
     * prints qemu-img's message and ends the command.
     */
    int next() throws ImgExit {
        int before = getopt.optind();
        int c = getopt.next();
        if (c == -1) {
            return -1;
        }
        int after = getopt.optind();
        boolean finished = classify(before, after);
        if (c == ':') {
            throw ctx.usageError("missing argument for option '" + previousElement(after, finished) + "'");
        }
        if (c == '?') {
            throw ctx.usageError("unrecognized option '" + previousElement(after, finished) + "'");
        }
        return c;
    }

    /** The argument of the option just returned. */
    String optarg() {
        return getopt.optarg();
    }

    /** The operands, once next() returned -1. */
    List<String> operands() {
        return getopt.operands();
    }

    /**
     * Sorts the elements passed over by one getopt call: operands skipped,
     * then the option element, then its separate argument. Returns whether
     * the option element was finished (false when getopt stopped inside a
     * cluster, with optind still on it).
     */
    private boolean classify(int before, int after) {
        boolean sawOption = false;
        for (int i = before; i < after && i < kinds.length; i++) {
            if (kinds[i] != Kind.UNSEEN) {
                // The rest of a cluster started in an earlier call.
                sawOption = true;
                continue;
            }
            String a = getopt.args()[i];
            if (!sawOption && !(a.startsWith("-") && a.length() > 1)) {
                kinds[i] = Kind.OPERAND;
                lastOperand = a;
            } else if (!sawOption) {
                kinds[i] = Kind.OPTION;
                sawOption = true;
            } else {
                kinds[i] = Kind.ARGUMENT;
            }
        }
        if (sawOption) {
            return true;
        }
        // Stopped inside a cluster: the element at optind is the option being read.
        if (after < kinds.length) {
            kinds[after] = Kind.OPTION;
        }
        return false;
    }

    /** glibc's argv[optind - 1] right after the call; see the class comment. */
    private String previousElement(int after, boolean finished) {
        if (finished) {
            return getopt.args()[after - 1];
        }
        if (lastOperand != null) {
            return lastOperand;
        }
        return after > 0 ? getopt.args()[after - 1] : argv[0];
    }
}
