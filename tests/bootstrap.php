<?php
// PHPUnit bootstrap: Debian's Laravel, the package under php/ and the test support classes.
if (!extension_loaded('scada_broadcast')) {
    fwrite(STDERR, "The scada_broadcast extension is not loaded. Run the suite with `make phpunit` "
        . "or: php -d extension=\$PWD/target/release/libscada_broadcast.so /usr/bin/phpunit -c tests/phpunit.xml\n");
    exit(1);
}
require_once 'Illuminate/autoload.php';

spl_autoload_register(function (string $class): void {
    $prefixes = [
        'Scada\\Broadcasting\\Tests\\' => __DIR__ . '/',
        'Scada\\Broadcasting\\' => dirname(__DIR__) . '/php/src/',
    ];
    foreach ($prefixes as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
