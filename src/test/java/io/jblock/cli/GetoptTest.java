package io.jblock.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class GetoptTest {
    private static final Getopt.LongOpt[] LONG = {
        new Getopt.LongOpt("format", Getopt.Arg.REQUIRED, 'f'),
        new Getopt.LongOpt("read-only", Getopt.Arg.NONE, 'r'),
        new Getopt.LongOpt("cache", Getopt.Arg.REQUIRED, 't'),
    };

    private record Run(List<String> seen, List<String> operands, String err) {
    }

    private static Run run(String shortOpts, String... args) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        Getopt g = new Getopt("prog", args, shortOpts, LONG, new PrintStream(e, true));
        List<String> seen = new ArrayList<>();
        int c;
        while ((c = g.next()) != -1) {
            seen.add((char) c + (g.optarg() != null ? "=" + g.optarg() : ""));
        }
        return new Run(seen, g.operands(), e.toString());
    }

    @Test
    void clustersAttachedArgumentsAndPermutation() {
        Run r = run("rf:t:", "img", "-rfraw", "--cache", "none", "x", "-t", "unsafe");
        assertThat(r.seen()).containsExactly("r", "f=raw", "t=none", "t=unsafe");
        assertThat(r.operands()).containsExactly("img", "x");
    }

    @Test
    void longOptionsByUniquePrefixAndEquals() {
        Run r = run("rf:t:", "--form=qcow2", "--read", "a");
        assertThat(r.seen()).containsExactly("f=qcow2", "r");
        assertThat(r.operands()).containsExactly("a");
    }

    @Test
    void doubleDashEndsOptions() {
        Run r = run("rf:", "-r", "--", "-f", "x");
        assertThat(r.seen()).containsExactly("r");
        assertThat(r.operands()).containsExactly("-f", "x");
    }

    @Test
    void messagesAreGlibcs() {
        assertThat(run("r", "-x").err()).isEqualTo("prog: invalid option -- 'x'\n");
        assertThat(run("rf:", "-f").err()).isEqualTo("prog: option requires an argument -- 'f'\n");
        assertThat(run("r", "--bogus").err()).isEqualTo("prog: unrecognized option '--bogus'\n");
        assertThat(run("r", "--read-only=1").err()).isEqualTo("prog: option '--read-only' doesn't allow an argument\n");
        assertThat(run("f:", "--format").err()).isEqualTo("prog: option '--format' requires an argument\n");
    }

    @Test
    void plusStopsAtFirstOperand() {
        Run r = run("+r", "a", "-r");
        assertThat(r.seen()).isEmpty();
        assertThat(r.operands()).containsExactly("a", "-r");
    }
}
