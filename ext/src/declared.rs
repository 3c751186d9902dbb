//! Parameters declared to PHP with their real type (reflection, the IDE
//! stubs, PHPStan) whose value the method still checks itself. With a plain
//! Rust type ext-php-rs would refuse a wrong value with its generic "Invalid
//! value given for argument"; ours name the method, the argument, the expected
//! and the given type. Taking the value costs what `&Zval` costs: nothing.

use ext_php_rs::convert::FromZval;
use ext_php_rs::flags::DataType;
use ext_php_rs::types::Zval;

/// A parameter whose declared type the method checks itself.
pub trait Declared<'a>: Copy {
    /// The value as given, dereferenced.
    fn zval(self) -> &'a Zval;
}

macro_rules! declared {
    ($(#[$doc:meta])* $name:ident => $ty:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a>(&'a Zval);

        impl<'a> Declared<'a> for $name<'a> {
            fn zval(self) -> &'a Zval {
                self.0.dereference()
            }
        }

        impl<'a> FromZval<'a> for $name<'a> {
            const TYPE: DataType = $ty;

            #[inline]
            fn from_zval(zval: &'a Zval) -> Option<Self> {
                Some(Self(zval))
            }
        }
    };
}

declared!(
    /// Declared `string`.
    StrArg => DataType::String
);
declared!(
    /// Declared `int`.
    IntArg => DataType::Long
);
declared!(
    /// Declared `array`.
    ArrayArg => DataType::Array
);

/// An optional parameter's value, with an explicit `null` read as "not given"
/// (what `?T $x = null` promises).
pub fn given<'a, T: Declared<'a>>(arg: Option<T>) -> Option<&'a Zval> {
    arg.map(T::zval).filter(|z| !z.is_null())
}
