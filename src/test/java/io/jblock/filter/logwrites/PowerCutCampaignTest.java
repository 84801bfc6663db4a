package io.jblock.filter.logwrites;

import io.jblock.block.CacheMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
        System.out.println("power-cut campaign, raw, seed " + seed + ", " + size);
        PowerCutCampaign campaign = new PowerCutCampaign(PowerCutCampaign.RAW, size, seed, tmp);
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
