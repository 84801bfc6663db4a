package io.jblock.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * glibc's {@code getopt_long}, behaviour and messages, because QEMU's tools
 * parse with it and scripts (and QEMU's own tests) depend on exactly what it
 * accepts and prints: short options clustered ({@code -rU}), arguments
 * attached or separate ({@code -fraw}, {@code -f raw}), long options
 * abbreviated to any unique prefix, {@code --opt=value}, {@code --} ending
 * options, and non-options permuted to the end unless the option string
 * starts with {@code +}. A leading {@code :} (after any {@code +}) silences
 * the messages and reports a missing argument as {@code ':'}.
 *
 * <p>Usage mirrors C: call {@link #next()} until it returns -1, then
 * {@link #optind()} indexes the first operand of {@link #args()} (the
 * permuted arguments).
 */
public final class Getopt {
    /** A long option: its name, whether it takes an argument, and the value next() returns for it. */
    public record LongOpt(String name, Arg arg, int val) {
    }

    public enum Arg { NONE, REQUIRED, OPTIONAL }

    private final String prog;
    private final String[] argv;
    private final String shortOpts;
    private final LongOpt[] longOpts;
    private final PrintStream err;
    private final boolean permute;
    private final boolean quiet;

    private int optind = 0;
    private int nextChar = 0;
    private String optarg;
    private int optopt;
    private int longIndex = -1;
    /** Operands seen so far, moved to the end when options are done (GNU permutation). */
    private final List<String> operands = new ArrayList<>();
    private final List<String> permuted = new ArrayList<>();
    private boolean done;

    /**
     * @param prog      the name errors start with (argv[0])
     * @param argv      the arguments, without argv[0]
     * @param shortOpts the option string, as getopt's
     * @param longOpts  long options, may be empty
     * @param err       where messages go
     */
    public Getopt(String prog, String[] argv, String shortOpts, LongOpt[] longOpts, PrintStream err) {
        this.prog = prog;
        this.argv = argv.clone();
        String s = shortOpts;
        boolean p = true;
        if (s.startsWith("+")) {
            p = false;
            s = s.substring(1);
        } else if (s.startsWith("-")) {
            s = s.substring(1);
        }
        this.quiet = s.startsWith(":");
        this.shortOpts = quiet ? s.substring(1) : s;
        this.permute = p;
        this.longOpts = longOpts;
        this.err = err;
    }

    /** The next option character (or long option's val), '?' for an error, ':' for a missing argument in quiet mode, -1 at the end. */
    public int next() {
        optarg = null;
        longIndex = -1;
        if (done) {
            return -1;
        }
        if (nextChar == 0) {
            while (true) {
                if (optind >= argv.length) {
                    return finish();
                }
                String a = argv[optind];
                if (a.equals("--")) {
                    permuted.add(a);
                    optind++;
                    return finish();
                }
                if (a.startsWith("-") && a.length() > 1) {
                    break;
                }
                if (!permute) {
                    return finish();
                }
                operands.add(a);
                optind++;
            }
            String a = argv[optind];
            if (a.startsWith("--")) {
                permuted.add(a);
                optind++;
                return parseLong(a.substring(2));
            }
            permuted.add(a);
            nextChar = 1;
        }
        String a = argv[optind];
        char c = a.charAt(nextChar++);
        boolean last = nextChar >= a.length();
        int idx = c == ':' ? -1 : shortOpts.indexOf(c);
        if (idx < 0) {
            optopt = c;
            if (!quiet) {
                err.println(prog + ": invalid option -- '" + c + "'");
            }
            if (last) {
                advance();
            }
            return '?';
        }
        boolean takesArg = idx + 1 < shortOpts.length() && shortOpts.charAt(idx + 1) == ':';
        boolean optionalArg = takesArg && idx + 2 < shortOpts.length() && shortOpts.charAt(idx + 2) == ':';
        if (!takesArg) {
            if (last) {
                advance();
            }
            return c;
        }
        if (!last) {
            optarg = a.substring(nextChar);
            advance();
            return c;
        }
        advance();
        if (optionalArg) {
            return c;
        }
        if (optind >= argv.length) {
            optopt = c;
            if (!quiet) {
                err.println(prog + ": option requires an argument -- '" + c + "'");
            }
            return quiet ? ':' : '?';
        }
        optarg = argv[optind];
        permuted.add(optarg);
        optind++;
        return c;
    }

    private void advance() {
        nextChar = 0;
        optind++;
    }

    private int finish() {
        done = true;
        // Options first, then the operands met on the way, then everything not looked at.
        int firstOperand = permuted.size();
        List<String> rest = new ArrayList<>(permuted);
        rest.addAll(operands);
        for (int i = optind; i < argv.length; i++) {
            rest.add(argv[i]);
        }
        System.arraycopy(rest.toArray(new String[0]), 0, argv, 0, argv.length);
        optind = firstOperand;
        return -1;
    }

    private int parseLong(String body) {
        int eq = body.indexOf('=');
        String name = eq >= 0 ? body.substring(0, eq) : body;
        LongOpt match = null;
        int matchIndex = -1;
        List<LongOpt> candidates = new ArrayList<>();
        for (int i = 0; i < longOpts.length; i++) {
            LongOpt o = longOpts[i];
            if (o.name().equals(name)) {
                match = o;
                matchIndex = i;
                candidates.clear();
                break;
            }
            if (o.name().startsWith(name)) {
                boolean same = !candidates.isEmpty() && candidates.stream().allMatch(
                        x -> x.arg() == o.arg() && x.val() == o.val());
                if (candidates.isEmpty() || !same) {
                    candidates.add(o);
                }
                if (match == null) {
                    match = o;
                    matchIndex = i;
                }
            }
        }
        if (candidates.size() > 1) {
            if (!quiet) {
                StringBuilder sb = new StringBuilder(prog + ": option '--" + name + "' is ambiguous; possibilities:");
                for (LongOpt o : candidates) {
                    sb.append(" '--").append(o.name()).append("'");
                }
                err.println(sb);
            }
            optopt = 0;
            return '?';
        }
        if (match == null) {
            if (!quiet) {
                err.println(prog + ": unrecognized option '--" + body + "'");
            }
            optopt = 0;
            return '?';
        }
        longIndex = matchIndex;
        switch (match.arg()) {
            case NONE -> {
                if (eq >= 0) {
                    if (!quiet) {
                        err.println(prog + ": option '--" + match.name() + "' doesn't allow an argument");
                    }
                    optopt = match.val();
                    return '?';
                }
            }
            case OPTIONAL -> {
                if (eq >= 0) {
                    optarg = body.substring(eq + 1);
                }
            }
            case REQUIRED -> {
                if (eq >= 0) {
                    optarg = body.substring(eq + 1);
                } else if (optind < argv.length) {
                    optarg = argv[optind];
                    permuted.add(optarg);
                    optind++;
                } else {
                    if (!quiet) {
                        err.println(prog + ": option '--" + match.name() + "' requires an argument");
                    }
                    optopt = match.val();
                    return quiet ? ':' : '?';
                }
            }
        }
        return match.val();
    }

    /** The argument of the option just returned, or null. */
    public String optarg() {
        return optarg;
    }

    /** The option character that caused the last '?' or ':'. */
    public int optopt() {
        return optopt;
    }

    /** Index into {@link #longOpts} of the long option just returned, or -1. */
    public int longIndex() {
        return longIndex;
    }

    /** After next() returned -1: index of the first operand in {@link #args()}. */
    public int optind() {
        return optind;
    }

    /** The arguments, permuted once next() returned -1. */
    public String[] args() {
        return argv;
    }

    /** The operands left after the options, once next() returned -1. */
    public List<String> operands() {
        return List.of(argv).subList(optind, argv.length);
    }
}
