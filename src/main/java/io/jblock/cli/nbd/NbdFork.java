package io.jblock.cli.nbd;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code --fork}: the JVM cannot fork, so the parent starts the server as a
 * child process with the same command line and waits until the child says it
 * is listening (a line on a pipe), then exits 0; if the child fails first,
 * the parent exits with its status. The child knows it is one by
 * {@value #ENV}.
 */
final class NbdFork {
    static final String ENV = "JBLOCK_NBD_FORKED";
    private static final String READY = "jblock-nbd-ready";

    private NbdFork() {
    }

    /** True in the child: it serves, and reports readiness instead of forking again. */
    static boolean isChild() {
        return System.getenv(ENV) != null;
    }

    static int forkAndWait(String prog, String[] args, PrintStream err) {
        if (isChild()) {
            throw new IllegalStateException("already forked");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(io.jblock.cli.Main.class.getName());
        if (!prog.equals("qemu-nbd")) {
            cmd.add("nbd");
        }
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put(ENV, "1");
        try {
            Process p = pb.start();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.equals(READY)) {
                        return 0;
                    }
                }
            }
            return p.waitFor();
        } catch (IOException e) {
            err.println(prog + ": Failed to fork: " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    /** In the forked child: tell the parent the server is listening, then stop using the pipe. */
    static void signalReady() {
        if (isChild()) {
            System.out.println(READY);
            System.out.flush();
            System.out.close();
        }
    }
}
