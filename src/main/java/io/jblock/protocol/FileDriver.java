package io.jblock.protocol;

import io.jblock.block.AioMode;
import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.engine.EngineFile;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** {@code driver=file,filename=PATH[,aio=threads|native|io_uring]}. */
public final class FileDriver implements BlockDriver {
    @Override
    public String name() {
        return "file";
    }

    @Override
    public boolean isProtocol() {
        return true;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        String filename = options.take("filename").orElseThrow(
                () -> new BlockException(Errno.EINVAL, "Parameter 'filename' is missing"));
        AioMode aio = options.takeChoice("aio", AioMode.class).orElse(AioMode.THREADS);
        if (aio == AioMode.NATIVE && !settings.direct()) {
            throw new BlockException(Errno.EINVAL, "aio=native was specified, but it requires cache.direct=on, "
                    + "which was not specified.");
        }
        options.take("locking");
        Path path = Path.of(filename);
        try {
            EngineFile f = context.engine(aio).open(path, settings.readOnly(), settings.direct());
            return new FileNode(settings, path, f);
        } catch (NoSuchFileException e) {
            throw new BlockException(Errno.ENOENT, "Could not open '" + filename + "': No such file or directory");
        } catch (AccessDeniedException e) {
            throw new BlockException(Errno.EACCES, "Could not open '" + filename + "': Permission denied");
        } catch (IOException e) {
            throw new BlockException(Errno.EIO, "Could not open '" + filename + "': " + e.getMessage(), e);
        }
    }
}
