<?php

namespace Scada\Broadcasting\Exceptions;

use RuntimeException;

final class SidecarBinaryMissing extends RuntimeException
{
    public static function named(string $binary): self
    {
        return new self("The scada-sidecar binary was not found: '$binary'. Build it with `cargo build --release` (target/release/scada-sidecar), "
            . "then put it on PATH or set SCADA_SIDECAR_BIN (config scada-broadcasting.sidecar.binary) to its full path.");
    }
}
