package io.jblock.cli.io;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;

import static io.jblock.cli.io.QemuIoOracle.IMG;

/**
 * The restriction on a probed raw image's first sector (enforced by the raw
 * node, see io.jblock.format.FormatSignatures) against qemu-io 7.2: each
 * candidate header is written from a pattern file to a probed raw image,
 * then to one whose format is named; both tools must refuse or accept alike.
 */
class IoProbedRawCompatTest {
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "qcow2 version 3, 514649fb00000003",
        "qcow2 version 2, 514649fb00000002",
        "qcow version 1, 514649fb00000001",
        "qcow magic with version 0 is raw, 514649fb00000000",
        "qcow magic with a huge version, 514649fbff000000",
        "vpc, 636f6e6563746978",
        "vhdx, 7668647866696c65",
        "qed, 51454400",
        "vmdk3, 434f5744",
        "vmdk4, 4b444d56",
        "vmdk descriptor, 76657273696f6e3d310a",
        "vmdk descriptor after a comment with CRLF, 23630a76657273696f6e3d330d0a",
        "vmdk descriptor version 4 is raw, 76657273696f6e3d340a",
        "vmdk descriptor after another line is raw, 780a76657273696f6e3d310a",
        "luks version 1, 4c554b53babe0001",
        "luks version 3 is raw, 4c554b53babe0003",
        "parallels, 576974686f757446726565537061636502000000",
        "parallels with extension, 576974686f754672655370616345787402000000",
        "parallels version 3 is raw, 576974686f757446726565537061636503000000",
        "vdi signature, 00000000000000000000000000000000000000000000000000000000000000000000000000000000"
                + "0000000000000000000000000000000000000000000000007f10dabe",
        "bochs, 426f636873205669727475616c20484420496d616765000000000000000000005265646f6c6f6700"
                + "000000000000000047726f77696e6700000000000000000000000200",
        "text, 68656c6c6f",
    })
    void aProbedRawImageRefusesTheHeadersQemuRefuses(String name, String hex, @TempDir Path tmp) throws Exception {
        byte[] head = HexFormat.of().parseHex(hex);
        Path pattern = Files.createDirectories(tmp.resolve("pattern")).resolve("head.bin");
        Files.write(pattern, Arrays.copyOf(head, 512));
        IoScript probed = IoScript.of(name, IMG, "-c", "write -s " + pattern + " 0 512", "-c", "read -v 0 16");
        IoCompatSupport.assertSameAsQemu(probed, Files.createDirectories(tmp.resolve("probed")));
        IoScript named = IoScript.of(name, "-f", "raw", IMG, "-c", "write -s " + pattern + " 0 512", "-c",
                "read -v 0 16");
        IoCompatSupport.assertSameAsQemu(named, Files.createDirectories(tmp.resolve("named")));
    }
}
