package io.jblock.nbd;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** Decoding a request header and the spec's checks, with the errors qemu-nbd gives. */
class NbdRequestTest {
    private static final long SIZE = 1 << 20;
    private static final NbdRequest.ExportSize EXPORT = () -> SIZE;

    private static NbdRequest.Refusal check(int flags, int type, long offset, long length) throws BlockException {
        return new NbdRequest(flags, type, 7, offset, length).refusal(true, true, false, EXPORT);
    }

    @Test
    void everyFieldDecodesAsUnsignedBigEndianAtItsOffset() {
        ByteBuffer b = ByteBuffer.allocate(3 + NbdRequest.SIZE);
        b.position(3);
        new NbdRequest(0xfffe, 0x8007, 0x0102030405060708L, 0x8000000000000010L, 0xffffffffL).encode(b);
        assertThat(b.getInt(3)).isEqualTo(0x25609513);
        assertThat(b.getShort(3 + 4)).isEqualTo((short) 0xfffe);
        assertThat(b.get(3 + 8)).isEqualTo((byte) 1);
        assertThat(b.getInt(3 + 24)).isEqualTo(-1);

        NbdRequest r = NbdRequest.decode(b, 3);
        assertThat(r).isEqualTo(new NbdRequest(0xfffe, 0x8007, 0x0102030405060708L, 0x8000000000000010L,
                0xffffffffL));
        assertThat(b.position()).as("decode reads by absolute index").isEqualTo(3 + NbdRequest.SIZE);
    }

    @Test
    void aWrongMagicDecodesToNothing() {
        ByteBuffer b = ByteBuffer.allocate(NbdRequest.SIZE);
        new NbdRequest(0, Nbd.CMD_READ, 1, 0, 512).encode(b);
        b.putInt(0, 0x25609514);
        assertThat(NbdRequest.decode(b, 0)).isNull();
    }

    @Test
    void onlyWritesCarryAPayloadAndOnlyDiscDisconnects() {
        for (int type = 0; type <= 8; type++) {
            NbdRequest r = new NbdRequest(0, type, 1, 0, 4096);
            assertThat(r.hasPayload()).as("type %d", type).isEqualTo(type == Nbd.CMD_WRITE);
            assertThat(r.isDisconnect()).as("type %d", type).isEqualTo(type == Nbd.CMD_DISC);
        }
    }

    @Test
    void aWritePayloadAboveTheLimitIsOversizeAndRefusedWithEinval() {
        assertThat(new NbdRequest(0, Nbd.CMD_WRITE, 1, 0, Nbd.MAX_PAYLOAD).oversizePayload()).isFalse();
        NbdRequest big = new NbdRequest(0, Nbd.CMD_WRITE, 1, 0, Nbd.MAX_PAYLOAD + 1L);
        assertThat(big.oversizePayload()).isTrue();
        assertThat(big.oversizeRefusal()).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL,
                "write of 33554433 bytes exceeds the maximum payload of 33554432"));
        assertThat(new NbdRequest(0, Nbd.CMD_READ, 1, 0, Nbd.MAX_PAYLOAD + 1L).oversizePayload())
                .as("a READ has no payload to drain").isFalse();
    }

    @Test
    void validRequestsOfEveryTypePass() throws BlockException {
        assertThat(check(Nbd.CMD_FLAG_DF, Nbd.CMD_READ, 0, 4096)).isNull();
        assertThat(check(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, SIZE - 4096, 4096)).isNull();
        assertThat(check(0, Nbd.CMD_FLUSH, 0, 0)).isNull();
        assertThat(check(Nbd.CMD_FLAG_FUA, Nbd.CMD_TRIM, 0, SIZE)).isNull();
        assertThat(check(Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO, Nbd.CMD_WRITE_ZEROES, 0,
                SIZE)).isNull();
        assertThat(check(0, Nbd.CMD_CACHE, SIZE, 0)).as("zero length at the very end").isNull();
        assertThat(check(Nbd.CMD_FLAG_REQ_ONE, Nbd.CMD_BLOCK_STATUS, 0, 512)).isNull();
    }

    @Test
    void anUnknownCommandIsInvalid() throws BlockException {
        assertThat(check(0, 8, 0, 0)).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL, "unknown command 8"));
        assertThat(check(0, 0xffff, 0, 0)).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL, "unknown command 65535"));
    }

    @ParameterizedTest
    @CsvSource({
            "0, 2", // READ: FUA
            "1, 4", // WRITE: DF
            "3, 1", // FLUSH: FUA
            "4, 2", // TRIM: NO_HOLE
            "5, 1", // CACHE: FUA
            "6, 8", // WRITE_ZEROES: REQ_ONE
            "7, 1", // BLOCK_STATUS: FUA
            "1, 32", // a flag the spec has not defined
    })
    void aFlagTheCommandDoesNotTakeIsInvalid(int type, int flag) throws BlockException {
        assertThat(check(flag, type, 0, 512)).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL,
                "unsupported flags 0x" + Integer.toHexString(flag) + " for command " + type));
    }

    @Test
    void dfNeedsStructuredReplies() throws BlockException {
        NbdRequest r = new NbdRequest(Nbd.CMD_FLAG_DF, Nbd.CMD_READ, 1, 0, 512);
        assertThat(r.refusal(false, false, false, EXPORT)).isEqualTo(
                new NbdRequest.Refusal(Nbd.EINVAL, "unsupported flags 0x4 for command 0"));
        assertThat(r.refusal(true, false, false, EXPORT)).isNull();
    }

    @Test
    void writesToAReadOnlyExportAreEpermAndReadsAreNot() throws BlockException {
        for (int type : new int[] {Nbd.CMD_WRITE, Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES}) {
            assertThat(new NbdRequest(0, type, 1, 0, 512).refusal(true, true, true, EXPORT)).as("type %d", type)
                    .isEqualTo(new NbdRequest.Refusal(Nbd.EPERM, "export is read-only"));
        }
        assertThat(new NbdRequest(0, Nbd.CMD_READ, 1, 0, 512).refusal(true, true, true, EXPORT)).isNull();
        assertThat(new NbdRequest(0, Nbd.CMD_FLUSH, 1, 0, 0).refusal(true, true, true, EXPORT)).isNull();
    }

    @Test
    void aReadAboveThePayloadLimitIsInvalidEvenInsideTheExport() throws BlockException {
        NbdRequest r = new NbdRequest(0, Nbd.CMD_READ, 1, 0, Nbd.MAX_PAYLOAD + 1L);
        assertThat(r.refusal(true, true, false, () -> 1L << 40)).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL,
                "read of 33554433 bytes exceeds the maximum payload of 33554432"));
    }

    @Test
    void blockStatusNeedsAMetaContextAndStructuredReplies() throws BlockException {
        NbdRequest r = new NbdRequest(0, Nbd.CMD_BLOCK_STATUS, 1, 0, 512);
        NbdRequest.Refusal none = new NbdRequest.Refusal(Nbd.EINVAL, "no meta context was negotiated");
        assertThat(r.refusal(true, false, false, EXPORT)).isEqualTo(none);
        assertThat(r.refusal(false, true, false, EXPORT)).isEqualTo(none);
    }

    @Test
    void flushNeverAsksForTheExportSize() throws BlockException {
        NbdRequest r = new NbdRequest(0, Nbd.CMD_FLUSH, 1, 1L << 62, 1L << 31);
        assertThat(r.refusal(true, true, false, () -> {
            throw new BlockException(Errno.EIO, "size asked for");
        })).isNull();
    }

    @ParameterizedTest
    @CsvSource({
            // type, offset, length, expected errno: writes past the end are ENOSPC, the rest EINVAL
            "1, 1048576, 1, 28",
            "6, 1044480, 8192, 28",
            "0, 1048064, 1024, 22",
            "4, 1048577, 0, 22",
            "5, 0, 1048577, 22",
            "7, 1048576, 1, 22",
    })
    void aRangePastTheEndGetsQemuNbdsError(int type, long offset, long length, int errno) throws BlockException {
        assertThat(check(0, type, offset, length)).isEqualTo(new NbdRequest.Refusal(errno,
                "operation past EOF: offset " + offset + ", length " + length + ", export size " + SIZE));
    }

    @Test
    void anOffsetAbove2To63IsPastTheEndAndPrintedUnsigned() throws BlockException {
        assertThat(check(0, Nbd.CMD_READ, 0x8000000000000000L, 512)).isEqualTo(new NbdRequest.Refusal(Nbd.EINVAL,
                "operation past EOF: offset 9223372036854775808, length 512, export size " + SIZE));
        assertThat(check(0, Nbd.CMD_WRITE, -1, 0)).extracting(NbdRequest.Refusal::error).isEqualTo(Nbd.ENOSPC);
    }

    @Test
    void aLengthThatWouldOverflowTheOffsetIsPastTheEnd() throws BlockException {
        NbdRequest r = new NbdRequest(0, Nbd.CMD_TRIM, 1, Long.MAX_VALUE - 10, 0xffffffffL);
        assertThat(r.refusal(true, true, false, () -> Long.MAX_VALUE)).extracting(NbdRequest.Refusal::error)
                .isEqualTo(Nbd.EINVAL);
    }
}
