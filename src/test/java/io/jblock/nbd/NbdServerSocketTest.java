package io.jblock.nbd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The socket options the server sets on a connection it accepts. */
class NbdServerSocketTest {
    @TempDir
    Path dir;

    /** A Unix connection gets the larger send buffer, as far as net.core.wmem_max lets it. */
    @Test
    void unixConnectionGetsTheLargeSendBuffer() throws IOException {
        long max = Long.parseLong(Files.readString(Path.of("/proc/sys/net/core/wmem_max")).trim());
        try (ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            l.bind(UnixDomainSocketAddress.of(dir.resolve("s.sock")));
            try (SocketChannel client = SocketChannel.open(l.getLocalAddress());
                 SocketChannel accepted = l.accept()) {
                int before = accepted.getOption(StandardSocketOptions.SO_SNDBUF);
                NbdServer.tune(accepted);
                int after = accepted.getOption(StandardSocketOptions.SO_SNDBUF);
                assertThat(after).isGreaterThanOrEqualTo(before);
                if (max >= NbdServer.UNIX_SEND_BUFFER) {
                    assertThat(after).isGreaterThanOrEqualTo(NbdServer.UNIX_SEND_BUFFER);
                } else {
                    assertThat(after).as("wmem_max %d", max).isGreaterThanOrEqualTo((int) max);
                }
                assertThat(client.isConnected()).isTrue();
            }
        }
    }

    /** TCP keeps the kernel's own send buffer sizing (setting SO_SNDBUF would switch it off), and gets TCP_NODELAY. */
    @Test
    void tcpConnectionKeepsTheKernelSizingAndGetsNoDelay() throws IOException {
        try (ServerSocketChannel l = ServerSocketChannel.open()) {
            l.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketAddress a = l.getLocalAddress();
            try (SocketChannel client = SocketChannel.open(a); SocketChannel accepted = l.accept()) {
                int before = accepted.getOption(StandardSocketOptions.SO_SNDBUF);
                NbdServer.tune(accepted);
                assertThat(accepted.getOption(StandardSocketOptions.SO_SNDBUF)).isEqualTo(before);
                assertThat(accepted.getOption(StandardSocketOptions.TCP_NODELAY)).isTrue();
                assertThat(client.isConnected()).isTrue();
            }
        }
    }
}
