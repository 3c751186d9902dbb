<?php
// Served by php-fpm in the FPM test (tests/Stack/PhpFpmTest.php): one
// broadcast from a real FPM worker, then what the worker saw, as JSON.
// ?channel=NAME&id=N
header('Content-Type: application/json');
$channel = (string) ($_GET['channel'] ?? 'fpm');
$loaded = extension_loaded('scada_broadcast');
$accepted = false;
$error = null;
if ($loaded) {
    try {
        $service = new Scada\Broadcasting\ScadaBroadcastingService();
        $accepted = $service->broadcast($channel, 'fpm.request', ['id' => (int) ($_GET['id'] ?? 0), 'sapi' => PHP_SAPI, 'php' => PHP_VERSION, 'pid' => getmypid()]);
        $service->flush(5000);
    } catch (Throwable $e) {
        $error = get_class($e) . ': ' . $e->getMessage();
    }
}
echo json_encode(['sapi' => PHP_SAPI, 'php' => PHP_VERSION, 'pid' => getmypid(), 'extension' => $loaded, 'accepted' => $accepted, 'error' => $error]);
