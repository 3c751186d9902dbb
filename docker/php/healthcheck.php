<?php
// Container health check: the extension is loaded and PHP-FPM accepts connections.
$listen = getenv('PHP_FPM_LISTEN') ?: '9000';
[$host, $port] = str_contains($listen, ':') ? explode(':', $listen, 2) : ['127.0.0.1', $listen];
$fpm = @fsockopen($host, (int) $port, $errno, $error, 2.0);
exit(extension_loaded('scada_broadcast') && $fpm !== false ? 0 : 1);
