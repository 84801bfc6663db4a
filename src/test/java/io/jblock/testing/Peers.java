package io.jblock.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * The real tools interop tests compare against, and jblock's launcher. A
 * test that needs a tool that is not installed fails here, saying which
 * package to install; it never skips.
 */
public final class Peers {
    private Peers() {
    }

    /** The result of running a command. */
    public record Result(int exit, String out, String err) {
        public Result ok() {
            assertThat(exit).as("exit status; stderr: %s", err).isZero();
            return this;
        }
    }

    /** The absolute path of {@code tool}, failing the test when it is not installed. */
    public static String require(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            Path p = Path.of(dir, tool);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        String pkg = switch (tool) {
            case "qemu-img", "qemu-io", "qemu-nbd" -> "qemu-utils";
            case "nbdinfo", "nbdcopy", "nbdsh" -> "libnbd-bin";
            default -> tool;
        };
        return fail(tool + " is not installed: the interop tests need it (apt-get install " + pkg + ")");
    }

    /** bin/jblock of this checkout; the jar must be built (interop tests run after package). */
    public static String jblock() {
        Path dir = Path.of(System.getProperty("jblock.projectDir", "."));
        Path launcher = dir.resolve("bin/jblock").toAbsolutePath();
        assertThat(dir.resolve("target/jblock.jar")).as("the jar, built by package").exists();
        return launcher.toString();
    }

    /** Runs a command to completion (at most {@code timeoutSeconds}), capturing its output. */
    public static Result run(long timeoutSeconds, List<String> cmd) throws IOException, InterruptedException {
        Path out = Files.createTempFile("jblock-out", ".txt");
        Path err = Files.createTempFile("jblock-err", ".txt");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                fail("timed out after " + timeoutSeconds + " s: " + cmd);
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    public static Result run(String... cmd) throws IOException, InterruptedException {
        return run(120, List.of(cmd));
    }

    /** A TCP port on loopback that was free a moment ago. */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** A background server process, killed (with its children) on close. */
    public static final class Server implements AutoCloseable {
        private final Process process;
        private final Path log;

        private Server(Process process, Path log) {
            this.process = process;
            this.log = log;
        }

        /** Starts {@code cmd} and waits until {@code ready} exists (a socket) or a TCP port accepts. */
        public static Server start(List<String> cmd, Path unixSocket, int tcpPort) throws Exception {
            Path log = Files.createTempFile("jblock-server", ".log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            Server s = new Server(p, log);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                if (!p.isAlive()) {
                    fail("server exited with " + p.exitValue() + ": " + Files.readString(log));
                }
                if (unixSocket != null && Files.exists(unixSocket)) {
                    return s;
                }
                if (tcpPort > 0) {
                    try (java.net.Socket ignored = new java.net.Socket(
                            java.net.InetAddress.getLoopbackAddress(), tcpPort)) {
                        // A probe connection counts as a client for qemu-nbd-like servers: use -t with TCP.
                        return s;
                    } catch (IOException notYet) {
                        // Not listening yet.
                    }
                }
                Thread.sleep(50);
            }
            s.close();
            return fail("server did not start listening: " + cmd);
        }

        public Process process() {
            return process;
        }

        public String log() throws IOException {
            return Files.readString(log);
        }

        @Override
        public void close() throws Exception {
            process.descendants().forEach(ProcessHandle::destroy);
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
            Files.deleteIfExists(log);
        }
    }

    public static List<String> cmd(String... parts) {
        return new ArrayList<>(List.of(parts));
    }
}
