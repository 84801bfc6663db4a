package io.jblock.block;

/** An edge of the node graph: the child's role ("file", "backing", "data-file") and the child. */
public record BlockChild(String role, BlockNode node) {
}
