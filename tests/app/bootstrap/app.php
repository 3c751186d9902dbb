<?php
// A small Laravel 8/10-layout application for the integration tests, built
// from Debian's php-laravel-framework (no Composer download). The package
// under php/ is registered explicitly, as Composer's package discovery would.
require __DIR__ . '/autoload.php';

$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$app->useStoragePath($scadaStorage);
$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Console\Kernel::class, App\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
