package io.jblock.cli.nbd;

import io.jblock.nbd.NbdServer;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.Channel;
import java.nio.channels.ServerSocketChannel;

/**
 * systemd socket activation (sd_listen_fds): when LISTEN_PID is this process
 * and LISTEN_FDS is 1, the listening socket is file descriptor 3. That is how
 * {@code nbdinfo -- [ jblock nbd ... ]} and nbdcopy start a captive server.
 *
 * <p>The JDK has no public way to wrap a file descriptor in a channel, but
 * {@link System#inheritedChannel()} wraps descriptor 0 when it is a socket.
 * So descriptor 3 is moved onto 0 with dup2(2) (through FFM), and the server
 * gets an ordinary ServerSocketChannel, TCP or Unix, served by virtual threads.
 */
final class SocketActivation {
    /** The first passed descriptor, SD_LISTEN_FDS_START. */
    private static final int FIRST_FD = 3;

    private SocketActivation() {
    }

    /** The activation, or null when this process was not socket-activated. */
    static SocketActivation fromEnvironment() throws NbdTool.UsageException {
        String pid = System.getenv("LISTEN_PID");
        String fds = System.getenv("LISTEN_FDS");
        if (pid == null || fds == null) {
            return null;
        }
        try {
            if (Long.parseLong(pid.trim()) != ProcessHandle.current().pid()) {
                return null;
            }
        } catch (NumberFormatException e) {
            return null;
        }
        if (!fds.trim().equals("1")) {
            throw new NbdTool.UsageException("Unexpected number of file descriptors in LISTEN_FDS: " + fds
                    + " (exactly one is supported)", NbdTool.TryHelp.NONE);
        }
        return new SocketActivation();
    }

    void serve(NbdServer server) throws IOException, InterruptedException {
        dup2(FIRST_FD, 0);
        Channel ch = System.inheritedChannel();
        if (!(ch instanceof ServerSocketChannel listener)) {
            throw new IOException("LISTEN_FDS: descriptor 3 is not a listening socket");
        }
        try (listener) {
            server.serve(listener);
        }
        server.awaitStopped();
    }

    private static void dup2(int from, int to) throws IOException {
        Linker linker = Linker.nativeLinker();
        MethodHandle dup2 = linker.downcallHandle(linker.defaultLookup().find("dup2").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        MethodHandle close = linker.downcallHandle(linker.defaultLookup().find("close").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        try {
            if ((int) dup2.invokeExact(from, to) < 0) {
                throw new IOException("dup2 of the activation socket failed");
            }
            int ignored = (int) close.invokeExact(from);
        } catch (IOException e) {
            throw e;
        } catch (Throwable e) {
            throw new IOException("dup2 of the activation socket failed", e);
        }
    }
}
