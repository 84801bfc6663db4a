package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.ImageUse;
import io.jblock.block.Drive;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.jblock.protocol.ImagePermissions.ALL;
import static io.jblock.protocol.ImagePermissions.CONSISTENT_READ;
import static io.jblock.protocol.ImagePermissions.RESIZE;
import static io.jblock.protocol.ImagePermissions.WRITE;
import static io.jblock.protocol.ImagePermissions.WRITE_UNCHANGED;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The file protocol's image locks within one JVM: open file description
 * locks belong to each open, so two nodes on one file meet as two processes
 * would.
 */
class ImageLocksTest {
    @TempDir
    Path dir;

    private Path image() throws Exception {
        Path p = dir.resolve("img.raw");
        Files.write(p, new byte[65536]);
        return p;
    }

    private static FileNode open(Path p, boolean readOnly, String locking) throws BlockException {
        Map<String, String> o = new LinkedHashMap<>();
        o.put("filename", p.toString());
        o.put("locking", locking);
        return (FileNode) new FileDriver().open(NodeSettings.defaults().withReadOnly(readOnly), new NodeOptions(o),
                new io.jblock.options.GraphOpener(io.jblock.options.DriverRegistry.standard(),
                        io.jblock.options.GraphOpener::standardEngine));
    }

    private static String conflict(String what, Path p) {
        return what + "\nIs another process using the image [" + p + "]?";
    }

    @Test
    void aWriterThatSharesEverythingStopsOnlyUsersThatRefuseToShareWrite() throws Exception {
        Path p = image();
        try (FileNode writer = open(p, false, "auto"); FileNode reader = open(p, true, "auto");
             FileNode copySource = open(p, true, "auto")) {
            writer.lockImage(new ImagePermissions(CONSISTENT_READ | WRITE, ALL));
            reader.lockImage(new ImagePermissions(CONSISTENT_READ, ALL));
            assertThatThrownBy(() -> copySource.lockImage(new ImagePermissions(CONSISTENT_READ,
                    CONSISTENT_READ | WRITE_UNCHANGED)))
                    .hasMessage(conflict("Failed to get shared \"write\" lock", p));
        }
    }

    @Test
    void aFailedChangeKeepsTheLocksItHadAndCloseDropsThem() throws Exception {
        Path p = image();
        try (FileNode exporter = open(p, true, "auto"); FileNode other = open(p, false, "auto")) {
            exporter.lockImage(new ImagePermissions(CONSISTENT_READ, ALL & ~RESIZE));
            other.lockImage(new ImagePermissions(CONSISTENT_READ, ALL));
            assertThatThrownBy(() -> other.lockImage(new ImagePermissions(CONSISTENT_READ | WRITE | RESIZE, ALL)))
                    .hasMessage(conflict("Failed to get \"resize\" lock", p));
            // The failed change left no write lock behind: a user refusing write still gets in.
            try (FileNode refusesWrite = open(p, true, "auto")) {
                refusesWrite.lockImage(new ImagePermissions(CONSISTENT_READ, CONSISTENT_READ | WRITE_UNCHANGED));
            }
            exporter.close();
            other.lockImage(new ImagePermissions(CONSISTENT_READ | WRITE | RESIZE, ALL));
        }
    }

    @Test
    void lockingOffTakesNoLocks() throws Exception {
        Path p = image();
        try (FileNode unlocked = open(p, false, "off"); FileNode refusesWrite = open(p, true, "on")) {
            unlocked.lockImage(new ImagePermissions(CONSISTENT_READ | WRITE | RESIZE, CONSISTENT_READ));
            refusesWrite.lockImage(new ImagePermissions(CONSISTENT_READ, CONSISTENT_READ));
        }
    }

    @Test
    void creatingAnImageThatIsBeingCopiedFailsInTheFileLayer() throws Exception {
        Path p = image();
        Files.write(p, new byte[] {1, 2, 3, 4}, java.nio.file.StandardOpenOption.WRITE);
        DriveConfig c = new DriveConfig();
        c.filename = p.toString();
        c.options.put("driver", "raw");
        c.readOnly = true;
        c.use = ImageUse.COPY_SOURCE;
        try (Drive source = DriveOpener.standard().open(c)) {
            assertThatThrownBy(() -> FileCreation.createFile(p.toString(), 4096, Prealloc.OFF))
                    .hasMessage(conflict("Failed to get \"write\" lock", p));
        }
        assertThat(Files.readAllBytes(p)).startsWith(1, 2, 3, 4).hasSize(65536);
    }

    @Test
    void forceShareIsInheritedByTheFileUnderAFormat() throws Exception {
        Path p = dir.resolve("img.qcow2");
        io.jblock.testing.Peers.run(io.jblock.testing.Peers.require("qemu-img"), "create", "-q", "-f", "qcow2",
                p.toString(), "1M").ok();
        try (FileNode writer = open(p, false, "auto")) {
            writer.lockImage(new ImagePermissions(CONSISTENT_READ | WRITE, ALL));
            DriveConfig c = new DriveConfig();
            c.filename = p.toString();
            c.options.put("driver", "qcow2");
            c.readOnly = true;
            assertThatThrownBy(() -> DriveOpener.standard().open(c))
                    .hasMessage(conflict("Failed to get shared \"write\" lock", p));
            DriveConfig forced = new DriveConfig();
            forced.filename = p.toString();
            forced.options.put("driver", "qcow2");
            forced.options.put("force-share", "on");
            forced.readOnly = true;
            try (Drive d = DriveOpener.standard().open(forced)) {
                BlockNode root = d.root();
                assertThat(root.driverName()).isEqualTo("qcow2");
            }
        }
    }
}
