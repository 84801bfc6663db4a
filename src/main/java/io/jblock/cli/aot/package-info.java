/**
 * The training run of the JDK's ahead-of-time cache for the command-line
 * tools: {@link io.jblock.cli.aot.AotTraining} runs the common short-lived
 * commands once, under {@code -XX:AOTCacheOutput}, when the build packages
 * the jar (see pom.xml); {@code bin/jblock} then starts from the cache.
 * Nothing here runs in normal use.
 */
package io.jblock.cli.aot;
