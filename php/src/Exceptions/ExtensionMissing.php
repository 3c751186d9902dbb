<?php

namespace Scada\Broadcasting\Exceptions;

use RuntimeException;

/** The scada_broadcast PHP extension is not loaded in this PHP. */
final class ExtensionMissing extends RuntimeException
{
    public static function inThisPhp(): self
    {
        return new self(sprintf(
            "The scada_broadcast PHP extension is not loaded (PHP %s, %s). scada-broadcast never falls back to a slower path that could lose events.\n"
            . "Install it: build with `cargo build --release` (target/release/libscada_broadcast.so), then add\n"
            . "    extension=/path/to/libscada_broadcast.so\n"
            . "to an ini file (%s, or `docker-php-ext-enable scada_broadcast` in the official php images) and restart PHP-FPM and your queue workers.\n"
            . "Check with: php -m | grep scada_broadcast",
            PHP_VERSION,
            PHP_SAPI,
            php_ini_scanned_files() ? 'e.g. ' . dirname(explode(',', php_ini_scanned_files())[0]) . '/scada_broadcast.ini' : 'php.ini'
        ));
    }
}
