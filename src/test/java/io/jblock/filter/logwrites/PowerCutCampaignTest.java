package io.jblock.filter.logwrites;

import io.jblock.block.CacheMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The power-cut campaign at a small size (bench/campaign.sh runs it large):
 * for every cache mode but unsafe, no cut loses a write the mode promised;
 * under unsafe it reports what a cut loses, and the figure must show that
 * power cuts do lose acknowledged writes there (else the campaign could not
 * see a loss at all).
 */
class PowerCutCampaignTest {
    @TempDir
    Path tmp;

    private static long prop(String name, long dflt) {
        return Long.parseLong(System.getProperty(name, Long.toString(dflt)));
    }

    @Test
    void everyCacheModeKeepsItsPromiseAcrossPowerCuts() throws Exception {
        long seed = prop("campaign.seed", System.nanoTime());
        PowerCutCampaign.Size size = new PowerCutCampaign.Size(prop("campaign.imageBytes", 1 << 20),
                (int) prop("campaign.requests", 150), (int) prop("campaign.randomPoints", 10),
                (int) prop("campaign.dropsPerPoint", 3));
        runEveryMode(PowerCutCampaign.RAW, size, seed);
    }

    /**
     * The qcow2 workloads: allocation in a fresh image, copy-on-write from a raw and from a qcow2 backing
     * file, writes over clusters an internal snapshot shares; with zero writes, discards and compressed
     * writes. Every rebuilt image also passes {@code qemu-img check} (leaks allowed) and reads back, where no
     * request wrote, what the base held. Smaller than raw's: every image costs a qemu-img process.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(Qcow2CampaignFormat.Shape.class)
    void qcow2KeepsEveryCacheModesPromiseAcrossPowerCuts(Qcow2CampaignFormat.Shape shape) throws Exception {
        long seed = prop("campaign.seed", System.nanoTime());
        PowerCutCampaign.Size size = new PowerCutCampaign.Size(prop("campaign.imageBytes", 1 << 20),
                (int) prop("campaign.qcow2.requests", prop("campaign.requests", 24) / 2),
                (int) prop("campaign.qcow2.randomPoints", prop("campaign.randomPoints", 4) / 2),
                (int) prop("campaign.qcow2.dropsPerPoint", Math.max(1, prop("campaign.dropsPerPoint", 2) / 2)));
        runEveryMode(new Qcow2CampaignFormat(shape), size, seed);
    }

    private void runEveryMode(PowerCutCampaign.Format format, PowerCutCampaign.Size size, long seed)
            throws Exception {
        System.out.println("power-cut campaign, " + format.name() + ", seed " + seed + ", " + size);
        PowerCutCampaign campaign = new PowerCutCampaign(format, size, seed, tmp);
        for (CacheMode mode : CacheMode.values()) {
            PowerCutCampaign.Figures f = campaign.run(mode);
            System.out.println(f.line());
            assertThat(f.imagesChecked()).isGreaterThan(f.pointsTried());
            if (mode == CacheMode.UNSAFE) {
                assertThat(f.flushPoints()).as("unsafe: no flush reaches the log").isZero();
                assertThat(f.ackedLost()).as("unsafe: cuts lose acknowledged writes (seed " + seed + ")")
                        .isPositive();
            } else {
                assertThat(f.flushPoints()).as(mode + ": flushes reach the log").isPositive();
                assertThat(f.violations()).as(mode + ", seed " + seed).isEmpty();
                assertThat(f.promisedLost()).isZero();
            }
        }
    }
}
