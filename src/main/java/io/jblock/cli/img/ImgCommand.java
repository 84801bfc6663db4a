package io.jblock.cli.img;

/**
 * One qemu-img command (create, info, check, ...): one class each, found by
 * name in {@link ImgTool}'s table.
 */
interface ImgCommand {
    /**
     * Runs the command.
     *
     * @param args the command's arguments, its own name first (as qemu-img's
     *             handlers get argv, so getopt messages can name argv[0])
     * @return the exit status
     * @throws ImgExit when the command stopped early; its message is printed already
     */
    int run(ImgContext ctx, String[] args) throws ImgExit;
}
