<?php

namespace Scada\Broadcasting\Exceptions;

use RuntimeException;

/** The sidecar does not answer on its status socket. */
final class SidecarUnavailable extends RuntimeException
{
    public static function at(string $statusSocket, string $why): self
    {
        return new self("The scada-broadcast sidecar does not answer at $statusSocket ($why). Start it with `php artisan scada:sidecar` (or your supervisor/systemd unit); until then events are spooled, not lost.");
    }
}
