package io.jblock.cli.nbd;

import io.jblock.testing.Peers;
import io.jblock.testing.Peers.Result;
import io.jblock.testing.Peers.Server;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** jblock nbd's command line, started as qemu-nbd through a link, against the real qemu-nbd. */
class NbdToolIT {
    @TempDir
    Path dir;

    /** bin/jblock linked as qemu-nbd, so messages name the same program. */
    private String linkedQemuNbd() throws Exception {
        Path link = dir.resolve("bin/qemu-nbd");
        Files.createDirectories(link.getParent());
        if (!Files.exists(link)) {
            Files.createSymbolicLink(link, Path.of(Peers.jblock()));
        }
        return link.toString();
    }

    private Path image() throws Exception {
        Path img = dir.resolve("t.img");
        if (!Files.exists(img)) {
            Peers.run(Peers.require("qemu-img"), "create", "-q", "-f", "raw", img.toString(), "8M").ok();
        }
        return img;
    }

    /** Every one of these fails before serving anything, so neither tool is left listening. */
    @ParameterizedTest(name = "qemu-nbd {0}")
    @ValueSource(strings = {
        "", "--bogus IMG", "-f", "--cache=bogus IMG", "--aio=bogus IMG", "--discard=bogus IMG",
        "--detect-zeroes=bogus IMG", "--detect-zeroes=unmap IMG", "-e x IMG", "-e -1 IMG", "-p x IMG",
        "-o x IMG", "-x a -L", "-L IMG", "-B b -f raw IMG", "-f bogus IMG", "--aio=native IMG", "-f raw /nonexistent",
        "--tls-creds=x IMG", "-n --cache=none IMG", "--cache=none --cache=none IMG", "--aio=threads --aio=threads IMG",
        "IMG IMG", "-k /nonexistent-dir/x.sock -f raw IMG", "-L --fork",
    })
    void badCommandLinesFailAsQemuNbdDoes(String args) throws Exception {
        String img = image().toString();
        List<String> a = new ArrayList<>();
        for (String s : args.split(" ")) {
            if (!s.isEmpty()) {
                a.add(s.equals("IMG") ? img : s);
            }
        }
        List<String> theirs = Peers.cmd(Peers.require("qemu-nbd"));
        theirs.addAll(a);
        List<String> ours = Peers.cmd(linkedQemuNbd());
        ours.addAll(a);
        Result q = Peers.run(30, theirs);
        Result j = Peers.run(30, ours);
        assertThat(j.exit()).as("exit of %s; stderr %s", args, j.err()).isEqualTo(q.exit());
        // Both print argv[0], the path each was started by; only that path may differ.
        assertThat(j.err().replace(linkedQemuNbd(), theirs.getFirst())).as("stderr of %s", args).isEqualTo(q.err());
        assertThat(j.out()).isEqualTo(q.out());
    }

    @Test
    void listModePrintsWhatQemuNbdPrints() throws Exception {
        Path img = image();
        Path sock = dir.resolve("l.sock");
        try (Server s = Server.start(List.of(linkedQemuNbd(), "-t", "-k", sock.toString(), "-x", "disk", "-D",
                "a described disk", "-A", "-e", "2", "-f", "raw", img.toString()), sock, 0)) {
            Result q = Peers.run(30, List.of(Peers.require("qemu-nbd"), "-L", "-k", sock.toString())).ok();
            Result j = Peers.run(30, List.of(linkedQemuNbd(), "-L", "-k", sock.toString())).ok();
            assertThat(j.out()).isEqualTo(q.out());
            assertThat(q.out()).contains(" export: 'disk'", "description: a described disk", "multi",
                    "qemu:allocation-depth");
        }
        Result q = Peers.run(30, List.of(Peers.require("qemu-nbd"), "-L", "-k", sock.toString()));
        Result j = Peers.run(30, List.of(linkedQemuNbd(), "-L", "-k", sock.toString()));
        assertThat(j.exit()).isEqualTo(q.exit()).isEqualTo(1);
        assertThat(j.err()).isEqualTo(q.err());
    }

    @Test
    void snapshotModeServesWritesButNeverWritesTheImage() throws Exception {
        Path img = image();
        byte[] before = Files.readAllBytes(img);
        Path sock = dir.resolve("s.sock");
        String uri = "nbd+unix:///?socket=" + sock;
        try (Server s = Server.start(List.of(linkedQemuNbd(), "-t", "-s", "-k", sock.toString(), "-f", "raw",
                img.toString()), sock, 0)) {
            Result r = Peers.run(Peers.require("qemu-io"), "-f", "raw", "-c", "write -P 0x77 0 1M", "-c", "flush",
                    "-c", "read -P 0x77 0 1M", uri).ok();
            assertThat(r.out()).doesNotContain("failed");
        }
        assertThat(Files.readAllBytes(img)).isEqualTo(before);
    }

    @Test
    void forkReturnsOnceListeningAndPidFileNamesTheServer() throws Exception {
        Path img = image();
        Path sock = dir.resolve("f.sock");
        Path pidFile = dir.resolve("nbd.pid");
        Result r = Peers.run(60, List.of(linkedQemuNbd(), "--fork", "--pid-file", pidFile.toString(), "-k",
                sock.toString(), "-f", "raw", img.toString())).ok();
        assertThat(r.err()).isEmpty();
        assertThat(sock).as("listening when --fork returns").exists();
        long pid = Long.parseLong(Files.readString(pidFile).trim());
        ProcessHandle server = ProcessHandle.of(pid).orElseThrow();
        assertThat(server.isAlive()).isTrue();
        try {
            Peers.run(Peers.require("qemu-io"), "-f", "raw", "-c", "write -P 0x12 0 4k",
                    "nbd+unix:///?socket=" + sock).ok();
            // Without -t the server exits when its last client leaves.
            assertThat(server.onExit().get(30, TimeUnit.SECONDS).isAlive()).isFalse();
        } finally {
            server.destroyForcibly();
        }
        assertThat(Files.readAllBytes(img)[4095]).isEqualTo((byte) 0x12);
    }

    @Test
    void sharedLimitsConcurrentClientsAndMultiConnFollowsIt() throws Exception {
        Path img = image();
        Path sock = dir.resolve("e.sock");
        String uri = "nbd+unix:///?socket=" + sock;
        try (Server s = Server.start(List.of(linkedQemuNbd(), "-t", "-e", "4", "-k", sock.toString(), "-f", "raw",
                img.toString()), sock, 0)) {
            assertThat(Peers.run(Peers.require("nbdinfo"), "--can", "multi-conn", uri).exit()).isZero();
            Peers.run(120, List.of(Peers.require("nbdcopy"), "--connections=4", "--flush", img.toString(), uri)).ok();
        }
    }
}
